"""User-level DP (DP-FedAvg): client sampling rate, noise calibration, each round's real noise.

The server releases one noisy average of clipped client updates per round. For
accounting, each release is a sampled Gaussian mechanism over *clients*: the
unit of privacy is one client's whole data set, the neighbouring relation is
adding or removing one client, and the cohort is treated as Poisson-sampled
with rate ``q = cohort / num_clients`` (Flower samples a fixed-size cohort
without replacement; using its expected rate with Opacus's Poisson accountants
is the approximation TensorFlow Federated and McMahan et al. 2018,
https://arxiv.org/abs/1710.06963, use). ε is composed by the run's accountant
(:mod:`fedsim.privacy.accountants`).
"""

from __future__ import annotations

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
    num_aggregated: int,
    num_sampled_clients: int,
    clipped_count_stddev: float | None = None,
) -> float:
    """The noise multiplier one round's release really had, for the accountant.

    Flower's wrappers add noise of std ``z_Δ * C / num_sampled_clients`` to the
    uniform mean of ``num_aggregated`` updates clipped to ``C``. Relative to one
    client's contribution to the sum (at most ``C``), that is a Gaussian
    mechanism with multiplier ``z_Δ * num_aggregated / num_sampled_clients``:
    smaller than z_Δ when sampled clients failed or were skipped. Under adaptive
    clipping the noisy count of clipped updates is a second Gaussian release
    with sensitivity 1 (Flower counts 0/1 bits) and multiplier
    ``clipped_count_stddev``; the two compose as one Gaussian with
    ``z^-2 = z_upd^-2 + z_count^-2`` (Andrew et al. 2021,
    https://arxiv.org/abs/1905.03871, Sec. 3.2).

    Args:
        update_noise_multiplier: z_Δ (> 0), the multiplier the wrapper noises the
            average with (under adaptive clipping, its share of z).
        num_aggregated: updates in the average (≥ 1).
        num_sampled_clients: the wrapper's cohort size (≥ ``num_aggregated``).
        clipped_count_stddev: std of the noise on the clipped count (adaptive only).

    Raises:
        ValueError: if ``num_aggregated`` is not in ``[1, num_sampled_clients]``.

    Example:
        >>> release_noise_multiplier(update_noise_multiplier=1.0, num_aggregated=8, num_sampled_clients=10)
        0.8
    """
    if not 1 <= num_aggregated <= num_sampled_clients:
        raise ValueError(f"num_aggregated must be in [1, {num_sampled_clients}], got {num_aggregated}")
    inverse_sq = (update_noise_multiplier * num_aggregated / num_sampled_clients) ** -2
    if clipped_count_stddev is not None:
        inverse_sq += clipped_count_stddev**-2
    return inverse_sq**-0.5
