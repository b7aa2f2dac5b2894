"""Noise calibration and epsilon computation, delegated to Opacus's accountants."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

from opacus.accountants import create_accountant
from opacus.accountants.utils import get_noise_multiplier

from fedsim.privacy.budget import PrivacyBudget


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
    """Epsilon of a composed DP-SGD history, from an Opacus accountant.

    Args:
        history: ``(noise_multiplier, sample_rate, steps)`` entries, composed in
            order (Opacus's own ``accountant.history`` format).
        delta: target δ in ``(0, 1)``.
        accountant: ``rdp`` (Mironov 2017, https://arxiv.org/abs/1702.07476; the
            sampled Gaussian of Mironov et al. 2019, https://arxiv.org/abs/1908.10530)
            or ``prv`` (Gopi et al. 2021, https://arxiv.org/abs/2106.02848).

    Returns:
        ε (≥ 0); 0.0 for an empty history, ``inf`` if any entry has noise 0.
    """
    entries = [entry for entry in history if entry[2] > 0]
    if not entries:
        return 0.0
    if any(sigma == 0 for sigma, _, _ in entries):
        return math.inf
    acct = create_accountant(mechanism=accountant)
    acct.history = list(entries)
    return float(acct.get_epsilon(delta=delta))


@lru_cache(maxsize=1024)
def calibrate_noise(
    *, target_epsilon: float, target_delta: float, sample_rate: float, steps: int, accountant: str
) -> float:
    """Smallest noise multiplier (within Opacus's 0.01 ε tolerance) meeting a budget.

    Wraps ``opacus.accountants.utils.get_noise_multiplier``; the result σ
    satisfies ``compute_epsilon(((σ, sample_rate, steps),), ...) ≤ target_epsilon``.

    Raises:
        ValueError: if no σ up to Opacus's maximum reaches the budget.
    """
    return float(
        get_noise_multiplier(
            target_epsilon=target_epsilon,
            target_delta=target_delta,
            sample_rate=sample_rate,
            steps=steps,
            accountant=accountant,
        )
    )


def resolve_noise_multiplier(
    budget: PrivacyBudget,
    *,
    num_examples: int,
    batch_size: int,
    steps_per_round: Callable[[int], int],
    rounds: int,
) -> float:
    """The noise multiplier one client trains with.

    With ``budget.noise_multiplier`` set, that value. Otherwise σ is calibrated so
    that a client which trains in *every* round (``rounds *
    steps_per_round(steps_per_epoch(q))`` Poisson-sampled steps at its own
    sample rate q) spends at most its ``target_epsilon``; a client sampled in
    fewer rounds spends less.

    Args:
        budget: the run's privacy settings (``mode="sample"``).
        num_examples: the client's training set size.
        batch_size: expected batch size.
        steps_per_round: maps steps per epoch to steps per round (e.g.
            :meth:`fedsim.client.TrainSpec.steps_per_round`).
        rounds: rounds in the run.
    """
    if budget.noise_multiplier is not None:
        return budget.noise_multiplier
    if budget.target_epsilon is None:
        raise ValueError("the budget has neither noise_multiplier nor target_epsilon")
    q = poisson_sample_rate(num_examples, batch_size)
    return calibrate_noise(
        target_epsilon=budget.target_epsilon,
        target_delta=budget.target_delta,
        sample_rate=q,
        steps=steps_per_round(steps_per_epoch(q)) * rounds,
        accountant=budget.accountant,
    )
