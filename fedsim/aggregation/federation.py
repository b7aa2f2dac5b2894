"""The federation a strategy runs: clients, rounds, the cohort, the strategy's own options and SecAgg+."""

from __future__ import annotations

from dataclasses import dataclass

from fedsim.privacy import cohort_size

COHORT_SAMPLINGS = ("fixed", "poisson")
"""How a round's cohort is drawn (:class:`fedsim.aggregation.Cohorts`)."""


@dataclass(frozen=True)
class FederationSpec:
    """Clients, rounds, cohort sampling, the server strategy and how it aggregates.

    Args:
        num_clients: registered clients (Flower SuperNodes), ≥ 1.
        rounds: FL rounds, ≥ 1.
        fraction_train: share of clients sampled per round (the cohort), in ``(0, 1]``.
        strategy: a name of :func:`fedsim.aggregation.available_strategies`.
        strategy_options: the strategy's own constructor arguments as sorted
            ``(name, value)`` pairs (e.g. FedAvgM's ``server_momentum``); the
            registry entry names which it takes.
        secure_aggregation: aggregate with Flower's SecAgg+ protocol (Bell et al. 2020,
            https://eprint.iacr.org/2020/704), so the server sees only the sum of
            the cohort's updates (run by Flower's legacy workflow).
        cohort_sampling: ``fixed`` (:attr:`cohort_size` clients without replacement,
            Flower's rule) or ``poisson`` (each client joins with probability
            ``fraction_train``; :attr:`cohort_size` is then the expected cohort).

    Raises:
        ValueError: for a count below 1 or a fraction outside ``(0, 1]``.

    Example:
        >>> FederationSpec(10, 5, 0.25, "fedavg", (), secure_aggregation=False).cohort_size
        2
    """

    num_clients: int
    rounds: int
    fraction_train: float
    strategy: str
    strategy_options: tuple[tuple[str, float], ...]
    secure_aggregation: bool
    cohort_sampling: str = "fixed"

    def __post_init__(self) -> None:
        if self.num_clients < 1 or self.rounds < 1:
            raise ValueError("num_clients and rounds must be ≥ 1")
        if not 0 < self.fraction_train <= 1:
            raise ValueError(f"fraction_train must be in (0, 1], got {self.fraction_train}")
        if self.cohort_sampling not in COHORT_SAMPLINGS:
            raise ValueError(f"cohort_sampling must be in {COHORT_SAMPLINGS}, got {self.cohort_sampling!r}")

    @property
    def cohort_size(self) -> int:
        """Clients sampled per round: ``max(int(num_clients * fraction_train), 1)`` (Flower's rule)."""
        return cohort_size(self.num_clients, self.fraction_train)

    @property
    def options(self) -> dict[str, float]:
        """:attr:`strategy_options` as keyword arguments for the strategy's constructor."""
        return dict(self.strategy_options)
