"""Each client's DP-SGD round, planned once from the run's settings, on the server and on the client alike."""

from __future__ import annotations

from dataclasses import dataclass

from fedsim.client import TrainSpec
from fedsim.privacy.budget import PrivacyBudget
from fedsim.privacy.calibrate import calibration_rounds, plan_client_round
from fedsim.privacy.events import PrivacyEvent


@dataclass(frozen=True)
class RoundPlanner:
    """Plans the DP-SGD round a client runs whenever it is sampled (σ, q, steps) and gives its budget.

    The same frozen object is used by the server (to foresee a client's next ε
    before sampling it) and by the client (to train), so both agree on σ, q and
    steps by construction; the ledger still checks every reply against the plan.

    Args:
        budget: the run's privacy settings.
        train: the clients' local training (batch size and steps per round set q and steps).
        num_clients: registered clients (tiers are assigned among them), ≥ 1.
        rounds: the run's rounds (σ is calibrated for :func:`calibration_rounds` of them).
        fraction_train: share of clients sampled per round, in ``(0, 1]``.
        seed: the run's seed (tier assignment).
        cohort_sampling: ``fixed`` or ``poisson`` (how cohorts are drawn; sets the
            user-level sampling rate and its accounting, :mod:`fedsim.privacy.user_level`).

    Example:
        >>> budget = PrivacyBudget(mode="sample", target_delta=1e-5, max_grad_norm=1.0, target_epsilon=None,
        ...                        noise_multiplier=1.1, accountant="rdp", tiers=(),
        ...                        calibrate_for="all-rounds", user_level=None)
        >>> train = TrainSpec(local_epochs=1, batch_size=100, learning_rate=0.1, momentum=0.0,
        ...                   local_steps=None)
        >>> RoundPlanner(budget, train, num_clients=2, rounds=5, fraction_train=1.0, seed=0).plan(0, 1000)
        (PrivacyEvent(noise_multiplier=1.1, sample_rate=0.1, steps=10), None)
    """

    budget: PrivacyBudget
    train: TrainSpec
    num_clients: int
    rounds: int
    fraction_train: float
    seed: int
    cohort_sampling: str = "fixed"

    def client_budget(self, partition_id: int) -> float | None:
        """Client ``partition_id``'s sample-level ε budget (its tier's), or None without one."""
        return self.budget.client_budget(partition_id, self.num_clients, seed=self.seed)

    def plan(self, partition_id: int, num_examples: int) -> tuple[PrivacyEvent, float | None]:
        """The DP-SGD round client ``partition_id`` (holding ``num_examples`` ≥ 1) runs, and its budget.

        Raises:
            ValueError: if no σ reaches the client's budget (:func:`plan_client_round`).
        """
        budget = self.client_budget(partition_id)
        event = plan_client_round(
            self.budget,
            num_examples=num_examples,
            batch_size=self.train.batch_size,
            steps_per_round=self.train.steps_per_round,
            rounds=calibration_rounds(self.budget, rounds=self.rounds, fraction_train=self.fraction_train),
            target_epsilon=budget,
        )
        return event, budget
