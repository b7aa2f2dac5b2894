"""Privacy-loss-distribution accountant (Google's ``dp_accounting.pld.PLDAccountant``)."""

from __future__ import annotations

from collections.abc import Callable

import dp_accounting
from dp_accounting import pld as dp_pld

from fedsim.privacy.accountants.base import Accountant, HistoryEntry

VALUE_DISCRETIZATION_INTERVAL = 1e-4
"""Grid step of the privacy loss, in nats (dp_accounting's default). Losses are
rounded up to the grid (a pessimistic estimate), so ε is an upper bound whose
excess grows like ``interval² × steps``: against a 2e-5 grid, 1e-4 adds under
1e-5 to ε at 50-1000 steps and about 1e-3 at 20 000 steps (1e-3 would add up to
0.1), at 0.02-0.6 s per ε."""

SIGMA_RELATIVE_TOLERANCE = 1e-3
"""Calibration tolerance on σ, relative to the bracket's lower end. ε falls
roughly like 1/σ, so this is an ε tolerance of about 0.1 % of the target
(0.01 at ε = 10), comparable to Opacus's 0.01 ε."""

MIN_SIGMA = 0.125
"""Smallest σ calibration tries: below it PLDs get wide and slow (over 10 s per ε)."""

MAX_SIGMA = 1e6
"""Largest σ calibration tries (Opacus's ``MAX_SIGMA``)."""


def _event(entries: tuple[HistoryEntry, ...]) -> dp_accounting.DpEvent:
    """The history as one dp_accounting event, its entries composed in order."""
    events = [
        dp_accounting.SelfComposedDpEvent(
            dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps
        )
        for sigma, q, steps in entries
    ]
    return events[0] if len(events) == 1 else dp_accounting.ComposedDpEvent(events)


def _fresh_accountant() -> dp_pld.PLDAccountant:
    return dp_pld.PLDAccountant(
        neighboring_relation=dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE,
        value_discretization_interval=VALUE_DISCRETIZATION_INTERVAL,
    )


def _bracket(
    epsilon_at: Callable[[float], float], target_epsilon: float
) -> dp_accounting.ExplicitBracketInterval:
    """σ's with ε(lower) > target ≥ ε(upper), upper = 2 lower, by doubling or halving from σ = 1.

    Raises:
        ValueError: if the bracket would leave ``[MIN_SIGMA, MAX_SIGMA]``.
    """
    lower = upper = 1.0
    if epsilon_at(1.0) > target_epsilon:
        lower, upper = 1.0, 2.0
        while epsilon_at(upper) > target_epsilon:
            lower, upper = upper, 2 * upper
            if upper > MAX_SIGMA:
                raise ValueError(
                    f"The privacy budget is too low: no σ ≤ {MAX_SIGMA:g} reaches ε ≤ {target_epsilon}"
                )
    else:
        lower, upper = 0.5, 1.0
        while epsilon_at(lower) <= target_epsilon:
            lower, upper = lower / 2, lower
            if lower < MIN_SIGMA:
                raise ValueError(
                    f"ε ≤ {target_epsilon} is met with σ < {MIN_SIGMA}, below the PLD accountant's range; "
                    "use the 'rdp' or 'prv' accountant for so large a budget"
                )
    return dp_accounting.ExplicitBracketInterval(lower, upper)


class PldAccountant(Accountant):
    """Privacy loss distributions of the sampled Gaussian, through Google's dp_accounting.

    Each entry ``(σ, q, steps)`` is a ``PoissonSampledDpEvent(q,
    GaussianDpEvent(σ))`` self-composed ``steps`` times, the entries composed in
    order (``ComposedDpEvent``); the privacy loss distribution (PLD) of the
    subsampled Gaussian is discretised pessimistically on a grid of
    :data:`VALUE_DISCRETIZATION_INTERVAL` nats and composed with FFTs (Koskela et
    al. 2020, https://arxiv.org/abs/1906.03049; Doroshenko et al. 2022, "Connect
    the Dots: Tighter Discrete Approximations of Privacy Loss Distributions",
    https://arxiv.org/abs/2207.04380, dp_accounting's method). Near-tight, like
    PRV accounting (Gopi et al. 2021, https://arxiv.org/abs/2106.02848).

    Calibration brackets σ by doubling or halving from 1 and hands the bracket to
    dp_accounting's ``calibrate_dp_mechanism`` (Brent's method), which
    guarantees ε(σ) ≤ target with σ within :data:`SIGMA_RELATIVE_TOLERANCE` of
    the optimum. Each ε costs 0.02-2 s (more for small σ and large q), a
    calibration typically 5-10 of them.

    Example:
        >>> round(PldAccountant().epsilon(((1.1, 0.01, 1000),), delta=1e-5), 4)
        1.5154
    """

    __slots__ = ()
    name = "pld"

    def _epsilon(self, entries: tuple[HistoryEntry, ...], *, delta: float) -> float:
        return float(_fresh_accountant().compose(_event(entries)).get_epsilon(delta))

    def _calibrate(
        self, *, target_epsilon: float, target_delta: float, sample_rate: float, steps: int
    ) -> float:
        def event_at(sigma: float) -> dp_accounting.DpEvent:
            return _event(((sigma, sample_rate, steps),))

        bracket = _bracket(
            lambda sigma: self._epsilon(((sigma, sample_rate, steps),), delta=target_delta), target_epsilon
        )
        sigma = dp_accounting.calibrate_dp_mechanism(
            _fresh_accountant,
            event_at,
            target_epsilon,
            target_delta,
            bracket_interval=bracket,
            tol=SIGMA_RELATIVE_TOLERANCE * bracket.endpoint_1,
        )
        return float(sigma)
