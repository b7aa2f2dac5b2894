"""Contract every registered accountant keeps (in the style of dp_accounting's privacy_accountant_test.py).

Each accountant's test class subclasses :class:`AccountantContract` and names the
library it wraps: its golden ε values are pinned both to literals (Opacus 1.6.0
for ``rdp``/``prv``, dp_accounting 0.6.0 for ``pld``) and to that library called
directly here, so a change in fedsim's wrapper or in the library shows up. The
module-level tests cross-check the three accountants against each other and
the registry.
"""

import math
import re
import warnings

import dp_accounting
import pytest
from dp_accounting import pld as dp_pld
from opacus.accountants import create_accountant as create_opacus_accountant
from opacus.accountants.utils import get_noise_multiplier

from fedsim.privacy import (
    Accountant,
    available_accountants,
    calibrate_noise,
    compute_epsilon,
    create_accountant,
)
from fedsim.privacy.accountants import ACCOUNTANTS
from tests.fixtures.specs import privacy_budget

# Golden settings: history, δ. The second composes two different entries, in order.
ONE_ENTRY = ((1.1, 0.01, 1000),)
TWO_ENTRIES = ((1.0, 0.02, 100), (1.5, 0.05, 300))
GOLDEN_CASES = [(ONE_ENTRY, 1e-5), (TWO_ENTRIES, 1e-5)]

# (σ, q, steps, δ) where every accountant is run; PRV and PLD are near-tight.
CROSS_CHECK = [(1.1, 0.01, 1000, 1e-5), (0.8, 0.05, 200, 1e-5), (1.0, 0.1, 50, 1e-5)]
PRV_PLD_TOLERANCE = 0.02  # |ε_PRV − ε_PLD|: Opacus's PRV eps_error (0.01) plus the PLD grid's slack
RDP_MAX_EXCESS = 0.35  # RDP is an upper bound, looser than both by under 35 % here


def quietly(compute):
    """Run ``compute()`` with the libraries' numerical warnings silenced (PRV's log(0) at q = 1)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compute()


class AccountantContract:
    """Subclass with ``name``, ``golden`` literals and ``library_epsilon`` (the wrapped library)."""

    name: str
    golden: dict  # history -> ε at δ = 1e-5, as computed once by the wrapped library
    calibration_tolerance = 0.01  # ε of the calibrated σ is within this below the target

    @pytest.fixture
    def accountant(self) -> Accountant:
        return create_accountant(self.name)

    def library_epsilon(self, history, delta: float) -> float:
        raise NotImplementedError

    def epsilons(self, accountant, histories, delta=1e-5) -> list[float]:
        return [quietly(lambda h=h: accountant.epsilon(h, delta=delta)) for h in histories]

    def test_registered_under_its_name(self, accountant):
        # Arrange / Act
        cls = ACCOUNTANTS[self.name]
        # Assert
        assert type(accountant) is cls and cls.name == self.name and isinstance(accountant, Accountant)

    @pytest.mark.parametrize("history, delta", GOLDEN_CASES)
    def test_golden_epsilon_equals_the_library(self, accountant, history, delta):
        # Arrange
        expected = quietly(lambda: self.library_epsilon(history, delta))
        # Act
        ours = quietly(lambda: accountant.epsilon(history, delta=delta))
        # Assert: the very float the library gives, and the value pinned when it was written
        assert ours == expected
        assert ours == pytest.approx(self.golden[history], rel=1e-9)

    def test_compute_epsilon_delegates_to_the_accountant(self, accountant):
        # Arrange
        history = ((1.2, 0.05, 40),)
        # Act
        via_fedsim = quietly(lambda: compute_epsilon(history, delta=1e-5, accountant=self.name))
        # Assert
        assert via_fedsim == quietly(lambda: accountant.epsilon(history, delta=1e-5))
        assert 0 < via_fedsim < math.inf

    def test_epsilon_does_not_grow_with_noise(self, accountant):
        # Arrange
        sigmas = [0.8, 1.0, 1.5, 2.0]
        # Act
        eps = self.epsilons(accountant, [((s, 0.05, 100),) for s in sigmas])
        # Assert
        assert all(a >= b for a, b in zip(eps, eps[1:], strict=False)) and eps[0] > 2 * eps[-1]

    def test_epsilon_does_not_shrink_with_steps(self, accountant):
        # Arrange
        steps = [10, 50, 100, 200]
        # Act
        eps = self.epsilons(accountant, [((1.0, 0.05, k),) for k in steps])
        # Assert
        assert all(a <= b for a, b in zip(eps, eps[1:], strict=False)) and eps[-1] > 2 * eps[0]

    def test_epsilon_does_not_shrink_with_sample_rate(self, accountant):
        # Arrange
        rates = [0.01, 0.02, 0.05, 0.1]
        # Act
        eps = self.epsilons(accountant, [((1.0, q, 50),) for q in rates])
        # Assert
        assert all(a <= b for a, b in zip(eps, eps[1:], strict=False)) and eps[-1] > 2 * eps[0]

    def test_calibration_round_trip(self, accountant):
        # Arrange
        target, q, steps = 2.0, 0.05, 100
        # Act
        sigma = quietly(
            lambda: accountant.calibrate(target_epsilon=target, target_delta=1e-5, sample_rate=q, steps=steps)
        )
        eps, eps_less_noise = self.epsilons(accountant, [((sigma, q, steps),), ((0.95 * sigma, q, steps),)])
        # Assert: the budget is met, nearly spent, and 5 % less noise would overspend it
        assert target - self.calibration_tolerance <= eps <= target
        assert eps_less_noise > target - self.calibration_tolerance
        assert 1.0 < sigma < 1.6

    def test_calibrate_noise_delegates_to_the_accountant(self, accountant):
        # Arrange
        kwargs = dict(target_epsilon=0.5, target_delta=1e-5, sample_rate=0.004, steps=1000)
        # Act
        via_fedsim = quietly(lambda: calibrate_noise(**kwargs, accountant=self.name))
        # Assert
        assert via_fedsim == quietly(lambda: accountant.calibrate(**kwargs)) > 0

    def test_empty_history_and_zero_steps_cost_nothing(self, accountant):
        # Act / Assert
        assert accountant.epsilon((), delta=1e-5) == 0.0
        assert accountant.epsilon(((1.0, 0.1, 0), (0.0, 0.5, 0)), delta=1e-5) == 0.0

    def test_zero_noise_is_infinite_epsilon(self, accountant):
        # Act / Assert
        assert math.isinf(accountant.epsilon(((0.0, 0.1, 1),), delta=1e-5))
        assert math.isinf(accountant.epsilon(((1.0, 0.1, 5), (0.0, 0.1, 1)), delta=1e-5))

    def test_entries_without_steps_are_skipped(self, accountant):
        # Arrange
        history = ((0.0, 0.1, 0), (1.0, 0.1, 5))
        # Act
        eps = quietly(lambda: accountant.epsilon(history, delta=1e-5))
        # Assert
        assert eps == quietly(lambda: accountant.epsilon(((1.0, 0.1, 5),), delta=1e-5)) > 0

    def test_unreachable_budget_raises(self, accountant):
        # Arrange: full-batch steps; no σ up to 10⁶ gets ε to 1e-5
        kwargs = dict(target_epsilon=1e-5, target_delta=1e-5, sample_rate=1.0, steps=100)
        # Act / Assert
        with pytest.raises(ValueError, match="privacy budget is too low"):
            quietly(lambda: accountant.calibrate(**kwargs))

    @pytest.mark.parametrize(
        "kwargs",
        [
            dict(target_epsilon=0.0, target_delta=1e-5, sample_rate=0.1, steps=10),
            dict(target_epsilon=1.0, target_delta=1.0, sample_rate=0.1, steps=10),
            dict(target_epsilon=1.0, target_delta=1e-5, sample_rate=0.0, steps=10),
            dict(target_epsilon=1.0, target_delta=1e-5, sample_rate=0.1, steps=0),
        ],
    )
    def test_calibrate_rejects_out_of_range_arguments(self, accountant, kwargs):
        # Act / Assert
        with pytest.raises(ValueError, match="need target_epsilon > 0"):
            accountant.calibrate(**kwargs)


class OpacusContract(AccountantContract):
    """An accountant that wraps Opacus: its ε and its calibration are Opacus's own floats."""

    def library_epsilon(self, history, delta: float) -> float:
        acct = create_opacus_accountant(mechanism=self.name)
        acct.history = list(history)
        return float(acct.get_epsilon(delta=delta))

    def test_calibration_equals_opacus(self, accountant):
        # Arrange
        kwargs = dict(target_epsilon=3.0, target_delta=1e-5, sample_rate=0.01, steps=1000)
        # Act
        sigma = quietly(lambda: accountant.calibrate(**kwargs))
        # Assert
        assert sigma == quietly(lambda: get_noise_multiplier(**kwargs, accountant=self.name))


class TestRdp(OpacusContract):
    name = "rdp"
    golden = {ONE_ENTRY: 1.7117700912203435, TWO_ENTRIES: 3.483724722065027}


class TestPrv(OpacusContract):
    name = "prv"
    golden = {ONE_ENTRY: 1.525472649316146, TWO_ENTRIES: 3.1632728242402925}


class TestPld(AccountantContract):
    name = "pld"
    golden = {ONE_ENTRY: 1.5153702481094293, TWO_ENTRIES: 3.1530740548346}

    def library_epsilon(self, history, delta: float) -> float:
        acct = dp_pld.PLDAccountant(value_discretization_interval=1e-4)
        for sigma, q, steps in history:
            acct.compose(
                dp_accounting.SelfComposedDpEvent(
                    dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps
                )
            )
        return float(acct.get_epsilon(delta))

    def test_large_budget_below_the_sigma_range_raises(self, accountant, monkeypatch):
        # Arrange: a budget met at σ = 1 already, with the range's floor raised so the search stops at once
        from fedsim.privacy.accountants import pld

        monkeypatch.setattr(pld, "MIN_SIGMA", 0.9)
        kwargs = dict(target_epsilon=50.0, target_delta=1e-5, sample_rate=0.01, steps=10)
        # Act / Assert
        with pytest.raises(ValueError, match="use the 'rdp' or 'prv' accountant"):
            accountant.calibrate(**kwargs)


@pytest.mark.parametrize("sigma, q, steps, delta", CROSS_CHECK)
def test_accountants_agree_pld_and_prv_tighter_than_rdp(sigma, q, steps, delta):
    # Arrange
    history = ((sigma, q, steps),)
    # Act
    eps = {
        name: quietly(lambda n=name: create_accountant(n).epsilon(history, delta=delta))
        for name in ACCOUNTANTS
    }
    # Assert
    assert abs(eps["prv"] - eps["pld"]) <= PRV_PLD_TOLERANCE
    assert max(eps["prv"], eps["pld"]) < eps["rdp"] < (1 + RDP_MAX_EXCESS) * min(eps["prv"], eps["pld"])


def test_every_registered_accountant_has_a_contract_class():
    # Arrange
    def leaves(cls):
        subs = cls.__subclasses__()
        return [c for s in subs for c in leaves(s)] if subs else [cls]

    # Act
    tested = sorted(cls.name for cls in leaves(AccountantContract))
    # Assert
    assert tested == available_accountants()
    assert {"pld", "prv", "rdp"} <= set(tested)


def test_unknown_name_error_names_the_choices():
    # Act / Assert
    with pytest.raises(
        ValueError, match=re.escape(f"unknown accountant 'gdp'; choose one of {available_accountants()}")
    ):
        create_accountant("gdp")


def test_budget_accepts_every_registered_accountant_and_names_them_on_error():
    # Act
    budgets = [
        privacy_budget(
            mode="sample", target_delta=1e-5, max_grad_norm=1.0, target_epsilon=1.0, accountant=name
        )
        for name in available_accountants()
    ]
    # Assert
    assert [b.accountant for b in budgets] == available_accountants()
    assert {"pld", "prv", "rdp"} <= {b.accountant for b in budgets}
    with pytest.raises(
        ValueError, match=re.escape(f"accountant must be one of {tuple(available_accountants())}")
    ):
        privacy_budget(
            mode="sample", target_delta=1e-5, max_grad_norm=1.0, target_epsilon=1.0, accountant="gdp"
        )
