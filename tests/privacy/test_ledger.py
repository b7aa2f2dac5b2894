"""The ledger's ε must equal what Opacus's own accountants report for the same history."""

import math

import pytest
from opacus.accountants import PRVAccountant, RDPAccountant

from fedsim.privacy import PrivacyEvent, PrivacyLedger, compute_epsilon


def opacus_epsilon(accountant, history, delta):
    """Drive an Opacus accountant the way PrivacyEngine does: one step() per optimiser step."""
    for sigma, q, steps in history:
        for _ in range(steps):
            accountant.step(noise_multiplier=sigma, sample_rate=q)
    return accountant.get_epsilon(delta=delta)


# (sigma, q, steps) per round a client trained; a client that skipped rounds has fewer entries.
HISTORY = [(1.1, 1 / 24, 12), (1.1, 1 / 24, 12), (1.1, 1 / 24, 12), (0.9, 1 / 12, 6)]


@pytest.mark.parametrize("name, cls", [("rdp", RDPAccountant), ("prv", PRVAccountant)])
def test_ledger_matches_opacus_accountant(name, cls):
    # Arrange
    ledger = PrivacyLedger(delta=1e-5, accountant=name)
    for server_round, (sigma, q, steps) in enumerate(HISTORY, start=1):
        ledger.record(7, server_round=server_round, event=PrivacyEvent(sigma, q, steps))
    # Act
    eps = ledger.epsilon(7)
    # Assert
    assert eps == pytest.approx(opacus_epsilon(cls(), HISTORY, 1e-5), rel=1e-6)
    assert ledger.rounds_trained(7) == 4
    assert ledger.epsilon_max() == eps


def test_composition_over_rounds_not_one_round():
    # A fresh PrivacyEngine per round would report one round's ε; the ledger composes all 20.
    ledger = PrivacyLedger(delta=1e-5, accountant="rdp")
    for r in range(1, 21):
        ledger.record(0, server_round=r, event=PrivacyEvent(1.0, 0.05, 20))
    one_round = compute_epsilon(((1.0, 0.05, 20),), delta=1e-5, accountant="rdp")
    assert ledger.epsilon(0) > 2.5 * one_round
    assert ledger.epsilon(0) == pytest.approx(
        opacus_epsilon(RDPAccountant(), [(1.0, 0.05, 20)] * 20, 1e-5), rel=1e-9
    )


# Golden values computed once with Opacus 1.6 (delta 1e-5): (sigma, q, steps) -> (RDP eps, PRV eps).
GOLDEN = [
    ((1.0, 0.01, 1000), 2.1013652716430564, 1.838371637017295),
    ((1.1, 1 / 24, 192), 3.6151650273804052, 3.210880396918132),
]


@pytest.mark.parametrize("history, rdp_eps, prv_eps", GOLDEN)
def test_golden_values(history, rdp_eps, prv_eps):
    assert compute_epsilon((history,), delta=1e-5, accountant="rdp") == pytest.approx(rdp_eps, rel=1e-9)
    assert compute_epsilon((history,), delta=1e-5, accountant="prv") == pytest.approx(prv_eps, rel=1e-6)


@pytest.mark.parametrize("history, rdp_eps, prv_eps", GOLDEN)
def test_golden_values_agree_with_dp_accounting(history, rdp_eps, prv_eps):
    # A second library (Google's dp_accounting): RDP to 0.01 %, PRV against its PLD accountant to 1 %.
    dp_accounting = pytest.importorskip("dp_accounting")
    from dp_accounting import pld, rdp

    sigma, q, steps = history
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps
    )
    rdp_acct, pld_acct = rdp.RdpAccountant(), pld.PLDAccountant()
    rdp_acct.compose(event)
    pld_acct.compose(event)
    assert rdp_acct.get_epsilon(1e-5) == pytest.approx(rdp_eps, rel=1e-4)
    assert pld_acct.get_epsilon(1e-5) == pytest.approx(prv_eps, rel=1e-2)


def test_per_client_epsilons_and_mean():
    ledger = PrivacyLedger(delta=1e-5, accountant="rdp")
    ledger.record(0, server_round=1, event=PrivacyEvent(1.0, 0.02, 50))
    ledger.record(1, server_round=1, event=PrivacyEvent(1.0, 0.02, 50))
    ledger.record(1, server_round=2, event=PrivacyEvent(1.0, 0.02, 50))
    eps = ledger.epsilons()
    assert eps[1] > eps[0] > 0
    assert ledger.epsilon_mean() == pytest.approx((eps[0] + eps[1]) / 2)
    assert ledger.epsilon(5) == 0.0  # never trained, nothing spent


def test_duplicate_round_is_rejected():
    ledger = PrivacyLedger(delta=1e-5, accountant="rdp")
    ledger.record(0, server_round=1, event=PrivacyEvent(1.0, 0.02, 5))
    with pytest.raises(ValueError, match="already recorded round 1"):
        ledger.record(0, server_round=1, event=PrivacyEvent(1.0, 0.02, 5))


def test_zero_noise_is_infinite_epsilon():
    assert math.isinf(compute_epsilon(((0.0, 0.1, 5),), delta=1e-5, accountant="rdp"))


@pytest.mark.parametrize("bad", [dict(delta=0.0), dict(delta=1.0)])
def test_bad_delta(bad):
    with pytest.raises(ValueError, match="delta must be in"):
        PrivacyLedger(**bad, accountant="rdp")
