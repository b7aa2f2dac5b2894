"""Flower's DP-FedAvg wrappers as fedsim builds them: every variant, and the adaptive norm's direction."""

import numpy as np
import pytest
from flwr.serverapp.strategy import DifferentialPrivacyServerSideAdaptiveClipping, FedAvg

from fedsim.aggregation.user_dp import (
    ServerSideAdaptiveClipping,
    client_mods,
    release_state,
    wrap_user_level,
)
from fedsim.privacy import UserLevelDP


@pytest.mark.parametrize("clipping", ["fixed", "adaptive"])
@pytest.mark.parametrize("clip_on", ["server", "client"])
def test_every_variant_wraps_and_reports_its_noise(clipping, clip_on):
    user = UserLevelDP(noise_multiplier=0.5, clipping=clipping, clip_on=clip_on, clipping_norm=0.7)
    wrapper = wrap_user_level(FedAvg(), user, noise_multiplier=0.5, cohort=20)
    state = release_state(wrapper)
    assert state["clipping_norm"] == 0.7 and state["cohort"] == 20
    if clipping == "fixed":
        assert state["update_noise_multiplier"] == 0.5 and state["clipped_count_stddev"] is None
    else:  # Flower splits z between the update and the clipped count (cohort / 20 = 1.0)
        assert state["clipped_count_stddev"] == 1.0
        assert state["update_noise_multiplier"] == pytest.approx((0.5**-2 - 2.0**-2) ** -0.5)
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
