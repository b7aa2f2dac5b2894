"""User-level DP: the noise each release really had, and calibration of z."""

import pytest

from fedsim.privacy import (
    client_sample_rate,
    cohort_size,
    compute_epsilon,
    release_noise_multiplier,
    resolve_user_noise_multiplier,
)
from tests.fixtures.specs import user_level_dp


def test_full_cohort_keeps_z():
    z = release_noise_multiplier(update_noise_multiplier=1.2, num_aggregated=10, num_sampled_clients=10)
    assert z == pytest.approx(1.2)


def test_fewer_updates_averaged_means_less_noise():
    # 6 of 10 sampled clients averaged, noise still scaled for 10
    z = release_noise_multiplier(update_noise_multiplier=1.0, num_aggregated=6, num_sampled_clients=10)
    assert z == pytest.approx(0.6)
    with pytest.raises(ValueError, match="num_aggregated must be in"):
        release_noise_multiplier(update_noise_multiplier=1.0, num_aggregated=0, num_sampled_clients=10)


def test_adaptive_count_release_composes_as_one_gaussian():
    # Andrew et al. 2021: z^-2 = z_update^-2 + z_count^-2
    z = release_noise_multiplier(
        update_noise_multiplier=2.0, num_aggregated=10, num_sampled_clients=10, clipped_count_stddev=2.0
    )
    assert z == pytest.approx((2.0**-2 + 2.0**-2) ** -0.5)


def test_cohort_matches_flower_fedavg_sampling():
    assert cohort_size(66, 0.1) == 6 and cohort_size(5, 0.1) == 1
    assert client_sample_rate(100, 0.2) == 0.2


def test_user_noise_calibration_meets_the_budget():
    user = user_level_dp(target_epsilon=4.0)
    z = resolve_user_noise_multiplier(user, delta=1e-5, accountant="rdp", sample_rate=0.2, rounds=20)
    assert compute_epsilon(((z, 0.2, 20),), delta=1e-5, accountant="rdp") <= 4.0
    assert compute_epsilon(((z * 0.95, 0.2, 20),), delta=1e-5, accountant="rdp") > 3.9
    fixed = user_level_dp(noise_multiplier=1.3, target_epsilon=4.0)
    assert (
        resolve_user_noise_multiplier(fixed, delta=1e-5, accountant="rdp", sample_rate=0.2, rounds=20) == 1.3
    )


def test_user_level_settings_are_validated():
    with pytest.raises(ValueError, match="needs a noise_multiplier or a target_epsilon"):
        user_level_dp()
    with pytest.raises(ValueError, match="clip_on must be"):
        user_level_dp(noise_multiplier=1.0, clip_on="cloud")
