"""Server-side aggregation: Flower strategies chosen by name from a registry, inside fedsim's round hooks."""

from fedsim.aggregation.cohorts import Cohorts
from fedsim.aggregation.factory import create_strategy
from fedsim.aggregation.federation import FederationSpec
from fedsim.aggregation.hooks import RoundHooks
from fedsim.aggregation.registry import StrategyEntry, available_strategies, get_strategy_entry
from fedsim.aggregation.replies import WEIGHT_KEY, ClientReply, FailedClient, is_aggregated, is_skipped

__all__ = [
    "WEIGHT_KEY",
    "ClientReply",
    "Cohorts",
    "FailedClient",
    "FederationSpec",
    "RoundHooks",
    "StrategyEntry",
    "available_strategies",
    "create_strategy",
    "get_strategy_entry",
    "is_aggregated",
    "is_skipped",
]
