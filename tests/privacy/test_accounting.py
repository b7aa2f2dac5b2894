"""The run's privacy accounting before a round: sample-level budgets and the user-level budget."""

import pytest
from flwr.serverapp.strategy import FedAvg

from fedsim.aggregation.user_dp import release_state, wrap_user_level
from fedsim.privacy import (
    BudgetGuard,
    PrivacyEvent,
    PrivacyLedger,
    ReleaseLedger,
    StoppingRule,
    compute_epsilon,
)
from fedsim.privacy.accounting import RunPrivacy, RunStopped, UserLevelAccounting
from fedsim.privacy.events import UserLevelRelease
from tests.fixtures.specs import user_level_dp

PLAN = PrivacyEvent(1.0, 0.25, 20)  # one round: sample-level ε 9.09


def accounting(user_target: float) -> RunPrivacy:
    """3 clients all sampled each round; client 0's budget (10) pays for one round only; z = 2 at q = 1."""
    ledger = PrivacyLedger(delta=1e-5, accountant="rdp")
    for client in range(3):
        ledger.record(client, server_round=1, event=PLAN)
    user = UserLevelAccounting(
        ledger=ReleaseLedger(delta=1e-5, accountant="rdp"),
        sample_rate=1.0,
        noise_multiplier=2.0,
        target_epsilon=user_target,
    )
    user.ledger.record(1, UserLevelRelease(2.0, 1.0))
    wrapper = wrap_user_level(
        FedAvg(), user_level_dp(noise_multiplier=2.0), noise_multiplier=2.0, num_sampled_clients=3
    )
    run = RunPrivacy(
        ledger=ledger,
        stopping=StoppingRule(min_clients=1, when_too_few="stop"),
        guard=BudgetGuard(ledger, budgets=[10.0, 20.0, 20.0], plans=[PLAN] * 3),
        user=user,
    )
    run.attach_user_dp(lambda: release_state(wrapper))
    return run


def eps(*zs: float) -> float:
    return compute_epsilon(tuple((z, 1.0, 1) for z in zs), delta=1e-5, accountant="rdp")


def test_user_budget_check_counts_clients_already_blocked():
    # Arrange: a budget a full-cohort round would meet, but a round without blocked client 0 would not
    target = (eps(2.0, 2.0) + eps(2.0, 4 / 3)) / 2
    run = accounting(target)
    # Act / Assert: before round 2, client 0 is blocked, so at most 2 of 3 updates: z = 4/3
    with pytest.raises(RunStopped):
        run.admit(2)
    assert "user-level release would exceed privacy.user-target-epsilon" in run.stop_reason
    assert run.guard.stopped_round == {0: 2}


def test_user_budget_check_lets_an_affordable_round_run():
    run = accounting(eps(2.0, 4 / 3) + 0.01)
    assert run.admit(2) == [0]


def test_state_dict_round_trips_both_ledgers_and_stopped_clients():
    # Arrange
    run = accounting(eps(2.0, 4 / 3) + 0.01)
    run.admit(2)
    fresh = accounting(100.0)
    fresh.ledger, fresh.user.ledger = (
        PrivacyLedger(delta=1e-5, accountant="rdp"),
        ReleaseLedger(delta=1e-5, accountant="rdp"),
    )
    fresh.guard = BudgetGuard(fresh.ledger, budgets=[10.0, 20.0, 20.0], plans=[PLAN] * 3)
    # Act
    fresh.load_state_dict(run.state_dict())
    # Assert
    assert fresh.ledger.epsilons() == run.ledger.epsilons()
    assert fresh.user.ledger.epsilon() == run.user.ledger.epsilon() == eps(2.0)
    assert fresh.guard.stopped_round == {0: 2}
