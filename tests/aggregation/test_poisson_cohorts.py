"""Poisson cohorts: seeded draws of varying size, the fixed-denominator sum, and rounds nobody trains in."""

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord

from fedsim.aggregation import Cohorts, create_strategy
from fedsim.aggregation.cohorts import sample_poisson_cohort
from fedsim.aggregation.user_dp import FixedDenominator, noise_only_release, wrap_user_level
from tests.contracts.test_strategy_contract import _Grid, reply, task_identity  # noqa: F401
from tests.fixtures.specs import user_level_dp


def test_each_client_joins_independently_at_rate_q():
    draws = [sample_poisson_cohort(0, r, 10, 0.3) for r in range(1, 4001)]
    sizes = np.array([len(d) for d in draws])
    joined = np.bincount(np.concatenate([d for d in draws if d]), minlength=10)
    # Assert: sizes are Binomial(10, 0.3) (mean 3, P(empty) = 0.7^10 = 2.8 %), every client in 30 % of rounds
    assert sizes.mean() == pytest.approx(3.0, abs=0.1)
    assert (sizes == 0).mean() == pytest.approx(0.7**10, abs=0.01)
    assert np.all(np.abs(joined - 1200) < 4 * np.sqrt(4000 * 0.3 * 0.7))
    assert draws == [sample_poisson_cohort(0, r, 10, 0.3) for r in range(1, 4001)]


def test_fixed_denominator_divides_the_sum_of_updates_by_the_expected_cohort():
    # Arrange: global model 1.0; two clients answer with 3.0 and 5.0 (updates 2 and 4); W = 4
    strategy = FixedDenominator(
        create_strategy("fedavg", num_clients=2, fraction_train=1.0, on_train_replies=print).strategy, 4
    )
    strategy.configure_train(1, ArrayRecord([np.ones(3, dtype=np.float32)]), ConfigRecord(), _Grid())
    # Act
    arrays, _ = strategy.aggregate_train(1, [reply(3.0, 1, 0), reply(5.0, 1, 1)])
    # Assert: 1 + (2 + 4) / 4, not FedAvg's 1 + (2 + 4) / 2
    released = arrays.to_numpy_ndarrays()[0]
    assert released.dtype == np.float32 and np.allclose(released, 2.5)


def test_an_empty_cohort_sends_nothing_and_still_releases_the_noise():
    # Arrange: 4 clients on nodes 1..4 at q = 0.4; seed 0's round 3 cohort is empty
    assert sample_poisson_cohort(0, 3, 4, 0.4) == []
    releases, wrappers = [], []

    def wrap(strategy):
        wrappers.append(
            wrap_user_level(
                FixedDenominator(strategy, 2),
                user_level_dp(noise_multiplier=1.0, clipping_norm=0.5),
                noise_multiplier=1.0,
                num_sampled_clients=2,
            )
        )
        return wrappers[0]

    hooks = create_strategy(
        "fedavg",
        num_clients=4,
        fraction_train=0.4,
        on_train_replies=lambda r, f: None,
        wrap=wrap,
        cohorts=Cohorts(node_ids=(1, 2, 3, 4), size=2, seed=0, poisson_rate=0.4),
        noise_seed=0,
        on_release=lambda server_round, n: releases.append((server_round, n)),
        empty_release=lambda arrays: noise_only_release(wrappers[0], arrays),
    )
    grid = _Grid()
    grid.get_node_ids = lambda: [1, 2, 3, 4]
    start = ArrayRecord([np.zeros(20000, dtype=np.float32)])
    # Act
    messages = hooks.configure_train(3, start, ConfigRecord(), grid)
    arrays, _ = hooks.aggregate_train(3, [])
    # Assert: nobody asked; the release is the model plus N(0, (z C / W)^2) = N(0, 0.25^2), accounted once
    assert messages == []
    noise = arrays.to_numpy_ndarrays()[0]
    assert noise.std() == pytest.approx(0.25, rel=0.03) and abs(noise.mean()) < 0.01
    assert releases == [(3, 0)]
