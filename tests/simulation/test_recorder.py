"""The recorder's checks before a round: sample-level budgets and the user-level budget."""

import pytest
from flwr.serverapp.strategy import FedAvg

from fedsim.aggregation.user_dp import wrap_user_level
from fedsim.privacy import (
    BudgetGuard,
    PrivacyEvent,
    PrivacyLedger,
    ReleaseLedger,
    UserLevelDP,
    compute_epsilon,
)
from fedsim.simulation.recorder import RunRecorder, RunStopped, UserLevelAccounting

PLAN = PrivacyEvent(1.0, 0.25, 20)  # one round: sample-level ε 9.09


def recorder(user_target: float) -> RunRecorder:
    """3 clients all sampled each round; client 0's budget (10) pays for one round only; z = 2 at q = 1."""
    ledger = PrivacyLedger(delta=1e-5)
    for client in range(3):
        ledger.record(client, server_round=1, event=PLAN)
    user = UserLevelAccounting(
        ledger=ReleaseLedger(delta=1e-5), sample_rate=1.0, noise_multiplier=2.0, target_epsilon=user_target
    )
    user.ledger.record(1, PrivacyEvent(2.0, 1.0, 1))
    user.wrapper = wrap_user_level(
        FedAvg(), UserLevelDP(noise_multiplier=2.0), noise_multiplier=2.0, num_sampled_clients=3
    )
    return RunRecorder(
        test_set=None,
        model=None,
        ledger=ledger,
        device=None,
        guard=BudgetGuard(ledger, budgets=[10.0, 20.0, 20.0], plans=[PLAN] * 3),
        user=user,
    )


def eps(*zs: float) -> float:
    return compute_epsilon(tuple((z, 1.0, 1) for z in zs), delta=1e-5, accountant="rdp")


def test_user_budget_check_counts_clients_already_blocked():
    # Arrange: a budget a full-cohort round would meet, but a round without blocked client 0 would not
    target = (eps(2.0, 2.0) + eps(2.0, 4 / 3)) / 2
    rec = recorder(target)
    # Act / Assert: before round 2, client 0 is blocked, so at most 2 of 3 updates: z = 4/3
    with pytest.raises(RunStopped):
        rec.configure_round(2)
    assert "user-level release would exceed privacy.user-target-epsilon" in rec.stop_reason
    assert rec.guard.stopped_round == {0: 2}


def test_user_budget_check_lets_an_affordable_round_run():
    rec = recorder(eps(2.0, 4 / 3) + 0.01)
    assert rec.configure_round(2) == {"blocked-clients": [0]}
