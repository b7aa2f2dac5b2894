"""Flower's DP-FedAvg wrappers as fedsim builds them: every variant, and the adaptive norm's direction."""

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord
from flwr.serverapp.strategy import DifferentialPrivacyServerSideAdaptiveClipping, FedAvg

from fedsim.aggregation.user_dp import (
    ServerSideAdaptiveClipping,
    client_mods,
    release_state,
    wrap_user_level,
)
from tests.fixtures.specs import user_level_dp


@pytest.mark.parametrize("clipping", ["fixed", "adaptive"])
@pytest.mark.parametrize("clip_on", ["server", "client"])
def test_every_variant_wraps_and_reports_its_noise(clipping, clip_on):
    user = user_level_dp(noise_multiplier=0.5, clipping=clipping, clip_on=clip_on, clipping_norm=0.7)
    wrapper = wrap_user_level(FedAvg(), user, noise_multiplier=0.5, num_sampled_clients=20)
    state = release_state(wrapper)
    assert state["clipping_norm"] == 0.7 and state["num_sampled_clients"] == 20
    if clipping == "fixed":
        assert state["update_noise_multiplier"] == 0.5 and state["clipped_count_stddev"] is None
    else:  # z split between the update and the clipped count (cohort / 20 = 1.0, sensitivity 1)
        assert state["clipped_count_stddev"] == 1.0
        assert state["update_noise_multiplier"] == pytest.approx((0.5**-2 - 1.0**-2) ** -0.5)
        # ... so that the round is one Gaussian release with multiplier z
        combined = (state["update_noise_multiplier"] ** -2 + state["clipped_count_stddev"] ** -2) ** -0.5
        assert combined == pytest.approx(0.5)
    assert len(client_mods(user)) == (1 if clip_on == "client" else 0)


def test_adaptive_norm_moves_towards_the_target_quantile():
    # Arrange: every update is far above the norm, so the clipped fraction is 1 > target 0.5
    ours = ServerSideAdaptiveClipping(FedAvg(), 0.0, 10, initial_clipping_norm=1.0)
    flowers = DifferentialPrivacyServerSideAdaptiveClipping(FedAvg(), 0.0, 10, initial_clipping_norm=1.0)
    # Act
    for _ in range(10):
        ours._geometric_update(1.0)
        flowers._geometric_update(1.0)
    # Assert: the norm must grow to clip fewer updates; Flower 1.42's update shrinks it
    assert ours.clipping_norm == pytest.approx(np.exp(10 * 0.2 * 0.5))
    assert flowers.clipping_norm < 1.0
    # and with nothing clipped the norm shrinks
    ours._geometric_update(0.0)
    assert ours.clipping_norm == pytest.approx(np.exp(10 * 0.2 * 0.5) * np.exp(-0.2 * 0.5))


def test_adaptive_noise_uses_the_norm_the_updates_were_clipped_to():
    # Arrange: z = 0.5 over a cohort of 4, count stddev 1, initial norm 2.0
    wrapper = ServerSideAdaptiveClipping(
        FedAvg(), 0.5, 4, initial_clipping_norm=2.0, clipped_count_stddev=1.0
    )
    wrapper._geometric_update(0.0)  # nothing clipped: the next round's norm shrinks
    arrays = ArrayRecord({"w": Array(np.zeros(200_000, dtype=np.float64))})
    # Act
    np.random.seed(0)  # Flower draws its noise from NumPy's global generator
    noisy = wrapper._add_noise_to_aggregated_arrays(arrays).to_numpy_ndarrays()[0]
    # Assert: std = z_update * 2.0 / 4 (this round's norm), not the lowered next norm
    assert wrapper.clipping_norm < 2.0 and wrapper.noise_clipping_norm == 2.0
    assert noisy.std() == pytest.approx(wrapper.noise_multiplier * 2.0 / 4, rel=0.01)
    assert release_state(wrapper)["clipping_norm"] == 2.0


def test_adaptive_needs_more_count_noise_than_z():
    with pytest.raises(ValueError, match="needs a clipped-count stddev above it"):
        ServerSideAdaptiveClipping(FedAvg(), 1.5, 10, clipped_count_stddev=1.0)
