"""Per-client budget enforcement: a client whose next round would overspend does not train."""

from __future__ import annotations

from dataclasses import dataclass, field

from fedsim.privacy.events import PrivacyEvent
from fedsim.privacy.ledger import PrivacyLedger


@dataclass
class BudgetGuard:
    """Decides, before each round, which clients may still train.

    Every client runs the same DP-SGD round whenever it is sampled (its
    ``plans[client]``: σ, q and steps). Before a round, a client whose ledger ε
    *after* that planned round would exceed its budget is stopped: it is told not
    to train, and stays stopped (its history cannot shrink). So no client's
    composed ε ever exceeds its budget, whatever the sampling schedule.

    Args:
        ledger: the run's sample-level ledger (the guard only reads it).
        budgets: each client's ε budget, or None for a client without one.
        plans: each client's per-round :class:`PrivacyEvent`.

    Example:
        >>> ledger = PrivacyLedger(delta=1e-5, accountant="rdp")  # one round costs ε 1.84, two 2.58
        >>> guard = BudgetGuard(ledger, budgets=[2.0], plans=[PrivacyEvent(2.0, 0.1, 50)])
        >>> guard.blocked(server_round=1)
        []
        >>> ledger.record(0, server_round=1, event=PrivacyEvent(2.0, 0.1, 50))
        >>> guard.blocked(server_round=2), guard.stopped_round
        ([0], {0: 2})
    """

    ledger: PrivacyLedger
    budgets: list[float | None]
    plans: list[PrivacyEvent]
    stopped_round: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.budgets) != len(self.plans):
            raise ValueError(f"{len(self.budgets)} budgets but {len(self.plans)} plans")

    def blocked(self, server_round: int) -> list[int]:
        """Clients that must not train in ``server_round`` (sorted); records when each stopped."""
        for client, budget in enumerate(self.budgets):
            if budget is None or client in self.stopped_round:
                continue
            if self.ledger.projected_epsilon(client, self.plans[client]) > budget:
                self.stopped_round[client] = server_round
        return sorted(self.stopped_round)

    def active(self) -> int:
        """Clients that may still train."""
        return len(self.budgets) - len(self.stopped_round)

    def check(self, client: int, event: PrivacyEvent) -> None:
        """Verify that a client ran its planned round (else the guard's forecast was wrong).

        Raises:
            RuntimeError: if the reported σ, q or steps differ from the plan.
        """
        plan = self.plans[client]
        same = (
            abs(event.noise_multiplier - plan.noise_multiplier) <= 1e-9 * max(1.0, plan.noise_multiplier)
            and abs(event.sample_rate - plan.sample_rate) <= 1e-12
            and event.steps == plan.steps
        )
        if not same:
            raise RuntimeError(
                f"client {client} ran {event}, not its planned {plan}; its ε would be misreported"
            )
