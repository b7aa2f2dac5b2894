"""Server-side aggregation: Flower strategies chosen by name."""

from fedsim.aggregation.strategies import (
    WEIGHT_KEY,
    ClientReply,
    Cohorts,
    FailedClient,
    available_strategies,
    create_strategy,
    is_aggregated,
    is_skipped,
)

__all__ = [
    "WEIGHT_KEY",
    "ClientReply",
    "Cohorts",
    "FailedClient",
    "available_strategies",
    "create_strategy",
    "is_aggregated",
    "is_skipped",
]
