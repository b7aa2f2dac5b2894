"""User-level DP (DP-FedAvg): client sampling rate, noise calibration, each round's real noise.

The server releases one noisy average of clipped client updates per round. For
accounting, each release is a sampled Gaussian mechanism over *clients*: the
unit of privacy is one client's whole data set. How exact ε is depends on how
the cohort is drawn (``federation.cohort-sampling``):

* ``poisson``: each client joins independently with probability q, and the sum
  of updates is divided by a fixed number (the expected cohort). Each round is
  then exactly a Poisson-sampled Gaussian mechanism under adding or removing one
  client, which the run's accountant (:mod:`fedsim.privacy.accountants`) composes;
* ``fixed`` (Flower's rule): a fixed-size cohort without replacement. The run's
  accountant then treats it as Poisson-sampled at ``q = cohort / num_clients``,
  the approximation TensorFlow Federated and McMahan et al. 2018,
  https://arxiv.org/abs/1710.06963, make; :func:`replace_one_epsilon` gives a
  bound proved for fixed-size sampling, under replacing one client's data (the
  neighbouring relation dp_accounting's sampling-without-replacement analysis
  uses, Wang et al. 2019, https://arxiv.org/abs/1808.00087).
"""

from __future__ import annotations

from collections import Counter

import dp_accounting
from dp_accounting.rdp import RdpAccountant

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


def user_sample_rate(num_clients: int, fraction_train: float, cohort_sampling: str) -> float:
    """Q of user-level accounting: ``fraction_train`` under Poisson sampling, else cohort / clients.

    Example:
        >>> user_sample_rate(66, 0.1, "fixed"), user_sample_rate(66, 0.1, "poisson")
        (0.09090909090909091, 0.1)
    """
    if cohort_sampling == "poisson":
        return fraction_train
    return client_sample_rate(num_clients, fraction_train)


def replace_one_epsilon(
    noise_multipliers: list[float], *, num_clients: int, cohort: int, delta: float
) -> float:
    """ε proved for fixed-size cohorts: each release a Gaussian on a cohort drawn without replacement.

    dp_accounting's RDP accountant composes one ``SampledWithoutReplacementDpEvent``
    (``cohort`` of ``num_clients``) of a ``GaussianDpEvent`` per release, under
    the replace-one neighbouring relation (one client's data replaced by
    another's), which is the relation its analysis of sampling without
    replacement supports (Wang et al. 2019, https://arxiv.org/abs/1808.00087,
    Theorem 27). Its noise multiplier is the noise's std over the l2-sensitivity
    *under that relation*: replacing one client's update, clipped to norm C, moves
    the sum by up to 2C, so a release with multiplier z (std z·C) enters as z / 2.

    Args:
        noise_multipliers: each release's real noise multiplier z (> 0).
        num_clients: clients in the federation.
        cohort: clients sampled per round (≤ ``num_clients``).
        delta: δ in ``(0, 1)``.

    Returns:
        ε (0.0 for no release).

    Example:
        >>> round(replace_one_epsilon([1.0] * 50, num_clients=100, cohort=10, delta=1e-5), 2)
        47.03
    """
    if not noise_multipliers:
        return 0.0
    accountant = RdpAccountant(neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_ONE)
    for z, count in sorted(Counter(noise_multipliers).items()):  # one composition per distinct z
        event = dp_accounting.GaussianDpEvent(z / 2)  # sensitivity 2C under replace-one
        if cohort < num_clients:
            event = dp_accounting.SampledWithoutReplacementDpEvent(num_clients, cohort, event)
        accountant.compose(event, count)
    return float(accountant.get_epsilon(delta))


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
