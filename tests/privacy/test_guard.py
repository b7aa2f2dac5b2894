"""Budget enforcement: no client's ledger ever exceeds its budget, whatever the schedule."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedsim.privacy import (
    BudgetGuard,
    BudgetTier,
    PrivacyEvent,
    PrivacyLedger,
    assign_tiers,
    calibration_rounds,
    plan_client_round,
)
from tests.fixtures.specs import privacy_budget

events = st.builds(
    PrivacyEvent,
    noise_multiplier=st.sampled_from([0.6, 0.9, 1.2, 2.0]),
    sample_rate=st.sampled_from([0.02, 0.1, 0.25, 1.0]),
    steps=st.integers(1, 40),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    plans=st.lists(events, min_size=1, max_size=6),
    budgets=st.lists(st.one_of(st.none(), st.floats(0.2, 12.0)), min_size=6, max_size=6),
    schedule=st.lists(st.lists(st.integers(0, 5), max_size=6), min_size=1, max_size=25),
    accountant=st.sampled_from(["rdp", "prv"]),
)
def test_no_ledger_ever_exceeds_its_budget(plans, budgets, schedule, accountant):
    # Arrange: random clients (plans, budgets) and a random participation schedule
    n = len(plans)
    budgets = budgets[:n]
    ledger = PrivacyLedger(delta=1e-5, accountant=accountant)
    guard = BudgetGuard(ledger, budgets=budgets, plans=plans)
    # Act: every round, sampled clients train unless the guard blocks them
    for server_round, cohort in enumerate(schedule, start=1):
        blocked = set(guard.blocked(server_round))
        for client in {c for c in cohort if c < n} - blocked:
            ledger.record(client, server_round=server_round, event=plans[client])
        # Assert, after every round
        for client, budget in enumerate(budgets):
            if budget is not None:
                assert ledger.epsilon(client) <= budget
    # A stopped client could not have afforded its next round, and stays stopped
    for client, stopped in guard.stopped_round.items():
        assert ledger.projected_epsilon(client, plans[client]) > budgets[client]
        assert all(r < stopped for r, _ in ledger.history(client))


def test_guard_rejects_a_round_other_than_planned():
    guard = BudgetGuard(
        PrivacyLedger(delta=1e-5, accountant="rdp"), budgets=[3.0], plans=[PrivacyEvent(1.0, 0.1, 10)]
    )
    guard.check(0, PrivacyEvent(1.0, 0.1, 10))
    with pytest.raises(RuntimeError, match="not its planned"):
        guard.check(0, PrivacyEvent(1.0, 0.1, 11))


def test_tiers_have_exact_sizes_and_follow_the_seed():
    tiers = (BudgetTier(0.3, 1.0, ""), BudgetTier(0.7, 8.0, ""))
    a, b = assign_tiers(10, tiers, seed=0), assign_tiers(10, tiers, seed=1)
    assert a.count(0) == b.count(0) == 3 and a.count(1) == 7
    assert a == assign_tiers(10, tiers, seed=0) and a != b
    # largest-remainder rounding: 3 tiers of a third over 10 clients
    thirds = tuple(BudgetTier(1 / 3, e, "") for e in (1.0, 2.0, 4.0))
    assert sorted(assign_tiers(10, thirds, seed=0).count(t) for t in range(3)) == [3, 3, 4]
    with pytest.raises(ValueError, match="add up to 1"):
        assign_tiers(10, (BudgetTier(0.5, 1.0, ""),), seed=0)


def test_client_budgets_come_from_the_tiers():
    budget = privacy_budget(
        mode="sample",
        target_delta=1e-5,
        max_grad_norm=1.0,
        tiers=(BudgetTier(0.3, 1.0, "strict"), BudgetTier(0.7, 8.0, "")),
    )
    budgets = budget.client_budgets(10, seed=4)
    names = budget.client_tiers(10, seed=4)
    assert sorted(budgets) == [1.0] * 3 + [8.0] * 7
    assert {(n, b) for n, b in zip(names, budgets, strict=True)} == {("strict", 1.0), ("ε=8", 8.0)}


def test_expected_rounds_calibration_needs_less_noise_and_is_enforced():
    # Arrange: 20 rounds, 10 % of clients per round -> a client joins 2 rounds on average
    common = dict(mode="sample", target_delta=1e-5, max_grad_norm=1.0, target_epsilon=3.0)
    every = privacy_budget(**common)
    expected = privacy_budget(**common, calibrate_for="expected-rounds")
    kwargs = dict(num_examples=600, batch_size=64, steps_per_round=lambda s: s)
    # Act
    plan_all = plan_client_round(
        every, rounds=calibration_rounds(every, rounds=20, fraction_train=0.1), **kwargs
    )
    plan_exp = plan_client_round(
        expected, rounds=calibration_rounds(expected, rounds=20, fraction_train=0.1), **kwargs
    )
    # Assert: q = 1/ceil(600/64) = 0.1, 10 steps per round; less noise when calibrated for 2 rounds
    assert (plan_all.sample_rate, plan_all.steps) == (0.1, 10)
    assert plan_exp.noise_multiplier < plan_all.noise_multiplier
    # and a client sampled in 3 rounds would overspend on its 3rd: the guard stops it
    ledger = PrivacyLedger(delta=1e-5, accountant="rdp")
    guard = BudgetGuard(ledger, budgets=[3.0], plans=[plan_exp])
    for server_round in (1, 2):
        assert guard.blocked(server_round) == []
        ledger.record(0, server_round=server_round, event=plan_exp)
    assert guard.blocked(3) == [0] and guard.stopped_round == {0: 3}
    assert ledger.epsilon(0) <= 3.0
