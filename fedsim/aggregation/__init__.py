"""Server-side aggregation: Flower strategies chosen by name."""

from fedsim.aggregation.strategies import (
    ClientReply,
    available_strategies,
    create_strategy,
)

__all__ = ["ClientReply", "available_strategies", "create_strategy"]
