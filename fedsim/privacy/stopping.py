"""When a run stops because too few clients have sample-level budget left."""

from __future__ import annotations

from dataclasses import dataclass

WHEN_TOO_FEW = ("stop", "continue")
"""What a run does when fewer than ``min_clients`` clients still have budget left."""


@dataclass(frozen=True)
class StoppingRule:
    """The run's rule for going on once sample-level budgets run out (checked before each round).

    Args:
        min_clients: fewest clients with budget left for training to go on (≥ 1).
        when_too_few: one of :data:`WHEN_TOO_FEW`: ``stop`` ends the run below
            ``min_clients``; ``continue`` goes on while any client can train.

    Raises:
        ValueError: for ``min_clients`` < 1 or an unknown ``when_too_few``.

    Example:
        >>> rule = StoppingRule(min_clients=3, when_too_few="stop")
        >>> rule.stops(active=2), rule.stops(active=3)
        (True, False)
    """

    min_clients: int
    when_too_few: str

    def __post_init__(self) -> None:
        if self.when_too_few not in WHEN_TOO_FEW:
            raise ValueError(f"when_too_few must be one of {WHEN_TOO_FEW}, got {self.when_too_few!r}")
        if self.min_clients < 1:
            raise ValueError(f"min_clients must be ≥ 1, got {self.min_clients}")

    def stops(self, *, active: int) -> bool:
        """Whether the run ends with ``active`` clients (≥ 0) able to afford another round."""
        return active == 0 or (active < self.min_clients and self.when_too_few == "stop")
