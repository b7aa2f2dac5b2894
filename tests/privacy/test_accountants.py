"""Golden ε values: fedsim's accounting equals Opacus 1.6's own RDP and PRV accountants.

The literals below were produced by Opacus 1.6.0 (``RDPAccountant`` /
``PRVAccountant`` with ``history = [(sigma, q, steps)]``, ``get_epsilon(delta)``);
each case is also recomputed with Opacus at test time, so a change in either
fedsim or Opacus shows up here.
"""

import math
import warnings

import pytest
from opacus.accountants import PRVAccountant, RDPAccountant
from opacus.accountants.utils import get_noise_multiplier

from fedsim.privacy import PrivacyEvent, PrivacyLedger, ReleaseLedger, calibrate_noise, compute_epsilon

# (noise multiplier, sample rate, steps, delta): (RDP ε, PRV ε)
GOLDEN = {
    (1.1, 0.01, 1000, 1e-5): (1.7117700912203435, 1.525472649316146),
    (0.8, 0.05, 200, 1e-5): (8.73182993236997, 7.71268820847272),
    (2.0, 0.004, 5000, 1e-6): (0.678474737677415, 0.6363719290238357),
    (1.0, 1.0, 10, 1e-5): (19.05359753163139, 17.86730414930238),
}
ACCOUNTANTS = {"rdp": RDPAccountant, "prv": PRVAccountant}
GOLDEN_TOLERANCE = {"rdp": 1e-9, "prv": 1e-7}
"""Relative tolerance against the literals: PRV's FFT-based convolution differs between processors in its
eighth digit (0.63637193611 on an AMD EPYC against the literal's 0.63637192902), far below its own
error bound (Opacus's ``eps_error`` 0.01); the recomputation on the same machine must agree to 1e-12."""


def opacus_epsilon(accountant: str, history, delta: float) -> float:
    acct = ACCOUNTANTS[accountant]()
    acct.history = list(history)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(acct.get_epsilon(delta=delta))


@pytest.mark.parametrize("case", sorted(GOLDEN))
@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_compute_epsilon_matches_golden_and_opacus(case, accountant):
    sigma, q, steps, delta = case
    golden = GOLDEN[case][0 if accountant == "rdp" else 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = compute_epsilon(((sigma, q, steps),), delta=delta, accountant=accountant)
    assert ours == pytest.approx(golden, rel=GOLDEN_TOLERANCE[accountant])
    assert ours == pytest.approx(opacus_epsilon(accountant, [(sigma, q, steps)], delta), rel=1e-12)


def test_prv_is_tighter_than_rdp_on_every_golden_case():
    assert all(prv < rdp for rdp, prv in GOLDEN.values())


@pytest.mark.parametrize("accountant, golden", [("rdp", 3.483724722065027), ("prv", 3.1632728242402925)])
def test_ledger_composes_mixed_rounds_like_opacus(accountant, golden):
    # Arrange: a client trained two different rounds (e.g. after its data grew)
    ledger = PrivacyLedger(delta=1e-5, accountant=accountant)
    ledger.record(0, server_round=1, event=PrivacyEvent(1.0, 0.02, 100))
    ledger.record(0, server_round=4, event=PrivacyEvent(1.5, 0.05, 300))
    # Act / Assert
    assert ledger.epsilon(0) == pytest.approx(golden, rel=1e-9)
    assert ledger.epsilon(0) == pytest.approx(
        opacus_epsilon(accountant, [(1.0, 0.02, 100), (1.5, 0.05, 300)], 1e-5), rel=1e-12
    )


@pytest.mark.parametrize("accountant, golden", [("rdp", 0.865478515625), ("prv", 0.8154296875)])
def test_calibration_matches_opacus_get_noise_multiplier(accountant, golden):
    kwargs = dict(target_epsilon=3.0, target_delta=1e-5, sample_rate=0.01, steps=1000, accountant=accountant)
    sigma = calibrate_noise(**kwargs)
    assert sigma == golden == get_noise_multiplier(**kwargs)
    assert compute_epsilon(((sigma, 0.01, 1000),), delta=1e-5, accountant=accountant) <= 3.0


def test_user_level_ledger_composes_rounds_with_opacus():
    # Arrange: 5 rounds at q = 0.1, one with fewer clients aggregated (smaller z)
    ledger = ReleaseLedger(delta=1e-5, accountant="rdp")
    zs = [1.0, 1.0, 0.8, 1.0, 1.0]
    for r, z in enumerate(zs, start=1):
        ledger.record(r, PrivacyEvent(z, 0.1, 1))
    # Assert: the history is what Opacus composes; a lower z costs more than a uniform history
    assert ledger.epsilon() == pytest.approx(
        opacus_epsilon("rdp", [(z, 0.1, 1) for z in zs], 1e-5), rel=1e-12
    )
    assert ledger.epsilon() > compute_epsilon(((1.0, 0.1, 5),), delta=1e-5, accountant="rdp")
    extra = PrivacyEvent(1.0, 0.1, 1)
    assert ledger.epsilon(extra=extra) > ledger.epsilon() and len(ledger.history()) == 5


def test_zero_noise_is_infinite_epsilon():
    assert math.isinf(compute_epsilon(((0.0, 0.1, 1),), delta=1e-5, accountant="rdp"))
