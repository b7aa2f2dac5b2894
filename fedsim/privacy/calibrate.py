"""Noise calibration and epsilon computation, delegated to the registered accountants."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

from fedsim.privacy.accountants import create_accountant
from fedsim.privacy.budget import PrivacyBudget
from fedsim.privacy.events import PrivacyEvent


def poisson_sample_rate(num_examples: int, batch_size: int) -> float:
    """Sampling rate q Opacus uses when it makes a loader private.

    Opacus's ``DPDataLoader.from_data_loader`` sets ``sample_rate = 1 /
    len(data_loader)``, i.e. ``1 / ceil(num_examples / batch_size)`` (not
    ``batch_size / num_examples``); fedsim calibrates with the same value.

    Raises:
        ValueError: if ``num_examples`` or ``batch_size`` is below 1.

    Example:
        >>> poisson_sample_rate(6000, 256)  # 1 / ceil(23.4)
        0.041666666666666664
    """
    if num_examples < 1 or batch_size < 1:
        raise ValueError(f"need num_examples ≥ 1 and batch_size ≥ 1, got {num_examples}, {batch_size}")
    return 1 / math.ceil(num_examples / batch_size)


def steps_per_epoch(sample_rate: float) -> int:
    """Steps in one epoch of Opacus's Poisson sampler: ``int(1 / sample_rate)``.

    Example:
        >>> steps_per_epoch(poisson_sample_rate(6000, 256))
        24
    """
    return int(1 / sample_rate)


@lru_cache(maxsize=1024)
def compute_epsilon(history: tuple[tuple[float, float, int], ...], *, delta: float, accountant: str) -> float:
    """Epsilon of a composed DP-SGD history, from a registered accountant.

    Args:
        history: ``(noise_multiplier, sample_rate, steps)`` entries, composed in
            order (Opacus's own ``accountant.history`` format).
        delta: target δ in ``(0, 1)``.
        accountant: a name of :func:`fedsim.privacy.accountants.available_accountants`:
            ``rdp`` (Opacus; Mironov 2017, https://arxiv.org/abs/1702.07476; the
            sampled Gaussian of Mironov et al. 2019, https://arxiv.org/abs/1908.10530),
            ``prv`` (Opacus; Gopi et al. 2021, https://arxiv.org/abs/2106.02848) or
            ``pld`` (dp_accounting; Doroshenko et al. 2022, https://arxiv.org/abs/2207.04380).

    Returns:
        ε (≥ 0); 0.0 for an empty history, ``inf`` if any entry has noise 0.

    Raises:
        ValueError: if ``accountant`` is not registered.
    """
    return create_accountant(accountant).epsilon(history, delta=delta)


@lru_cache(maxsize=1024)
def calibrate_noise(
    *, target_epsilon: float, target_delta: float, sample_rate: float, steps: int, accountant: str
) -> float:
    """Smallest noise multiplier (within the accountant's tolerance) meeting a budget.

    ``rdp`` and ``prv`` wrap ``opacus.accountants.utils.get_noise_multiplier``
    (ε within 0.01 below the target); ``pld`` wraps dp_accounting's
    ``calibrate_dp_mechanism``. The result σ satisfies
    ``compute_epsilon(((σ, sample_rate, steps),), ...) ≤ target_epsilon``.

    Args:
        target_epsilon: ε budget (> 0).
        target_delta: δ in ``(0, 1)``.
        sample_rate: Poisson sampling probability q in ``(0, 1]``.
        steps: noisy steps (≥ 1) the budget must cover.
        accountant: a name of :func:`fedsim.privacy.accountants.available_accountants`.

    Returns:
        σ > 0, noise std over the clipping norm.

    Raises:
        ValueError: if the accountant is unknown, an argument is out of range, or
            no σ reaches the budget.
    """
    return create_accountant(accountant).calibrate(
        target_epsilon=target_epsilon, target_delta=target_delta, sample_rate=sample_rate, steps=steps
    )


def calibration_rounds(budget: PrivacyBudget, *, rounds: int, fraction_train: float) -> int:
    """Rounds a client's sample-level noise is calibrated for (``budget.calibrate_for``).

    ``all-rounds``: ``rounds``. ``expected-rounds``: ``ceil(rounds * fraction_train)``,
    the rounds a client joins on average when the cohort is sampled uniformly.

    Example:
        >>> b = PrivacyBudget(mode="sample", target_delta=1e-5, max_grad_norm=1.0, target_epsilon=3.0,
        ...                   noise_multiplier=None, accountant="rdp", tiers=(),
        ...                   calibrate_for="expected-rounds", user_level=None)
        >>> calibration_rounds(b, rounds=20, fraction_train=0.1)
        2
    """
    if budget.calibrate_for == "all-rounds":
        return rounds
    return max(1, math.ceil(rounds * fraction_train - 1e-9))


def plan_client_round(
    budget: PrivacyBudget,
    *,
    num_examples: int,
    batch_size: int,
    steps_per_round: Callable[[int], int],
    rounds: int,
    target_epsilon: float | None = None,
) -> PrivacyEvent:
    """The DP-SGD round a client runs whenever it is sampled: σ, q and steps.

    q is Opacus's Poisson rate (:func:`poisson_sample_rate`) and the steps are
    ``steps_per_round(steps_per_epoch(q))``. σ is ``budget.noise_multiplier`` when
    fixed; otherwise the smallest σ with which ``rounds`` such rounds spend at
    most the client's budget (:func:`calibrate_noise`).

    The server uses it to foresee a client's next ε before sampling it, the
    client to train; the ledger checks that what the client reports matches.

    Args:
        budget: the run's privacy settings (sample-level mode).
        num_examples: the client's training set size (≥ 1).
        batch_size: expected batch size (≥ 1).
        steps_per_round: maps Opacus's steps per epoch (``int(1/q)``) to steps per round.
        rounds: rounds to calibrate σ for (see :func:`calibration_rounds`).
        target_epsilon: the client's own budget (its tier's); default
            ``budget.target_epsilon``.

    Raises:
        ValueError: if there is neither a noise multiplier nor a budget, or no σ
            reaches the budget.

    Example:
        >>> b = PrivacyBudget(mode="sample", target_delta=1e-5, max_grad_norm=1.0, target_epsilon=None,
        ...                   noise_multiplier=1.1, accountant="rdp", tiers=(),
        ...                   calibrate_for="all-rounds", user_level=None)
        >>> plan_client_round(b, num_examples=1000, batch_size=100, steps_per_round=lambda s: s, rounds=5)
        PrivacyEvent(noise_multiplier=1.1, sample_rate=0.1, steps=10)
    """
    q = poisson_sample_rate(num_examples, batch_size)
    steps = steps_per_round(steps_per_epoch(q))
    if budget.noise_multiplier is not None:
        return PrivacyEvent(noise_multiplier=budget.noise_multiplier, sample_rate=q, steps=steps)
    epsilon = target_epsilon if target_epsilon is not None else budget.target_epsilon
    if epsilon is None:
        raise ValueError("the budget has neither noise_multiplier nor target_epsilon")
    sigma = calibrate_noise(
        target_epsilon=epsilon,
        target_delta=budget.target_delta,
        sample_rate=q,
        steps=steps * rounds,
        accountant=budget.accountant,
    )
    return PrivacyEvent(noise_multiplier=sigma, sample_rate=q, steps=steps)
