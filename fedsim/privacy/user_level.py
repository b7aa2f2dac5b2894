"""User-level DP (DP-FedAvg): client sampling rate, noise calibration, each round's real noise.

The server releases one noisy average of clipped client updates per round. For
accounting, each release is a sampled Gaussian mechanism over *clients*: the
unit of privacy is one client's whole data set, the neighbouring relation is
adding or removing one client, and the cohort is treated as Poisson-sampled
with rate ``q = cohort / num_clients`` (Flower samples a fixed-size cohort
without replacement; using its expected rate with Opacus's Poisson accountants
is the approximation TensorFlow Federated and McMahan et al. 2018,
https://arxiv.org/abs/1710.06963, use). ε is composed by Opacus's accountants.
"""

from __future__ import annotations

import math

from fedsim.privacy.budget import UserLevelDP
from fedsim.privacy.calibrate import calibrate_noise


def cohort_size(num_clients: int, fraction_train: float) -> int:
    """Clients Flower's FedAvg samples per round: ``max(int(num_clients * fraction_train), 1)``.

    Example:
        >>> cohort_size(66, 0.1)
        6
    """
    return max(int(num_clients * fraction_train), 1)


def client_sample_rate(num_clients: int, fraction_train: float) -> float:
    """Q of user-level accounting: the cohort's share of all clients, in ``(0, 1]``.

    Example:
        >>> client_sample_rate(100, 0.1)
        0.1
    """
    return cohort_size(num_clients, fraction_train) / num_clients


def resolve_user_noise_multiplier(
    user: UserLevelDP, *, delta: float, accountant: str, sample_rate: float, rounds: int
) -> float:
    """The DP-FedAvg noise multiplier z: fixed, or the smallest meeting the user-level budget.

    Calibrated so that ``rounds`` releases at client sampling rate ``sample_rate``
    spend at most ``user.target_epsilon``.

    Raises:
        ValueError: if no z reaches the target.
    """
    if user.noise_multiplier is not None:
        return user.noise_multiplier
    return calibrate_noise(
        target_epsilon=user.target_epsilon,
        target_delta=delta,
        sample_rate=sample_rate,
        steps=rounds,
        accountant=accountant,
    )


def release_noise_multiplier(
    *,
    update_noise_multiplier: float,
    clipping_norm: float,
    noise_clipping_norm: float,
    num_aggregated: int,
    cohort: int,
    clipped_count_stddev: float | None = None,
) -> float:
    """The noise multiplier one round's release really had, for the accountant.

    Flower's wrappers add noise of std ``z_Δ * C_noise / cohort`` to the uniform
    mean of ``num_aggregated`` updates clipped to ``C``. Relative to one
    client's contribution to the sum (at most ``C``), that is a Gaussian
    mechanism with multiplier ``z_Δ * (C_noise / C) * (num_aggregated / cohort)``:
    smaller than z_Δ when clients failed or were skipped, or when the noise was
    scaled by a smaller norm than the updates were clipped to (Flower 1.42's
    adaptive clipping does this; fedsim's wrappers do not). Under adaptive clipping the noisy count of
    clipped updates is a second Gaussian release with sensitivity 1 (Flower
    counts 0/1 bits) and multiplier ``clipped_count_stddev``; the two compose as
    one Gaussian with ``z^-2 = z_upd^-2 + z_count^-2`` (Andrew et al. 2021,
    https://arxiv.org/abs/1905.03871, Sec. 3.2).

    Args:
        update_noise_multiplier: z_Δ, the multiplier Flower's wrapper noises the
            average with (after its adaptive-clipping adjustment).
        clipping_norm: C the updates were clipped to this round (> 0).
        noise_clipping_norm: the norm the noise was scaled by (> 0).
        num_aggregated: updates in the average (≥ 0).
        cohort: the wrapper's ``num_sampled_clients`` (≥ 1).
        clipped_count_stddev: std of the noise on the clipped count (adaptive only).

    Returns:
        z of the round (``inf`` when nothing was aggregated and no count was released).

    Example:
        >>> release_noise_multiplier(update_noise_multiplier=1.0, clipping_norm=1.0,
        ...     noise_clipping_norm=1.0, num_aggregated=8, cohort=10)
        0.8
    """
    if num_aggregated > 0:
        z_update = update_noise_multiplier * (noise_clipping_norm / clipping_norm) * (num_aggregated / cohort)
        inverse_sq = z_update**-2 if z_update > 0 else math.inf
    else:
        inverse_sq = 0.0
    if clipped_count_stddev is not None:
        inverse_sq += clipped_count_stddev**-2 if clipped_count_stddev > 0 else math.inf
    if inverse_sq == math.inf:
        return 0.0
    return math.inf if inverse_sq == 0 else inverse_sq**-0.5
