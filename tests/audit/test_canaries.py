"""Dirac canaries: the plan, the server's observer and the audit of its scores."""

import numpy as np
import pytest

from fedsim.audit.canaries import CanaryObserver, plan_dirac_canaries
from fedsim.audit.canary_audit import THREAT_MODELS, canary_results, dirac_scores

SHAPES = {"conv.weight": (4, 1, 3, 3), "conv.bias": (4,), "fc.weight": (10, 36), "fc.bias": (10,)}


def plan(count=100, seed=0, clients=3):
    return plan_dirac_canaries(count, shapes=SHAPES, num_clients=clients, norm=1.5, seed=seed)


def test_the_plan_draws_distinct_weight_coordinates_and_fair_coins():
    # Act
    canaries = plan(300)
    # Assert
    coordinates = set(zip(canaries.names, canaries.indices, strict=True))
    assert len(coordinates) == 300
    assert set(canaries.names) == {"conv.weight", "fc.weight"}  # biases are left out
    assert all(i < np.prod(SHAPES[n]) for n, i in coordinates)
    assert 120 < sum(canaries.included) < 180
    assert set(canaries.holders) == {0, 1, 2}
    assert canaries.norm == 1.5


def test_the_plan_depends_on_the_seed_only():
    # Act / Assert
    assert plan(seed=4) == plan(seed=4)
    assert plan(seed=4) != plan(seed=5)


def test_a_client_trains_on_its_included_canaries_only():
    # Arrange
    canaries = plan()
    # Act
    held = canaries.held_by(1)
    # Assert
    expected = [
        (n, i)
        for n, i, inc, h in zip(
            canaries.names, canaries.indices, canaries.included, canaries.holders, strict=True
        )
        if inc and h == 1
    ]
    assert list(held) == expected and held


def test_too_many_canaries_are_refused():
    # Act / Assert
    with pytest.raises(ValueError, match="between 2 and the model's 396 weights"):
        plan(397)


def test_the_observer_scores_the_final_model_and_each_holders_updates():
    # Arrange: client 0 moves every canary coordinate by -1 in round 1, client 1 by -2
    canaries = plan(50, clients=2)
    observer = CanaryObserver(canaries)
    zero = {n: np.zeros(s) for n, s in SHAPES.items()}
    moved = {pid: {n: np.full(s, -1.0 - pid) for n, s in SHAPES.items()} for pid in (0, 1)}
    after = {n: np.full(s, -1.5) for n, s in SHAPES.items()}
    # Act
    observer.observe(zero, moved, after)
    scores = observer.scores()
    # Assert
    holders = np.array(canaries.holders)
    assert np.allclose(scores["final"], 1.5)
    assert np.allclose(scores["all-rounds"], np.where(holders == 0, 1.0, 2.0))


def test_the_observer_survives_a_checkpoint():
    # Arrange
    observer = CanaryObserver(plan(20))
    state = {n: np.arange(np.prod(s), dtype=float).reshape(s) for n, s in SHAPES.items()}
    observer.observe(state, {0: state, 2: state}, state)
    again = CanaryObserver(plan(20))
    # Act
    again.load_state_dict(observer.state_dict())
    # Assert
    for name in THREAT_MODELS:
        assert np.array_equal(again.scores()[name], observer.scores()[name])


def test_canary_results_compare_each_threat_model_with_the_accountant():
    # Arrange: the holder's updates reveal the coins exactly
    canaries = plan(396, clients=1)
    observer = CanaryObserver(canaries)
    zero = {n: np.zeros(s) for n, s in SHAPES.items()}
    trained = {n: np.zeros(s) for n, s in SHAPES.items()}
    for name, index, inc in zip(canaries.names, canaries.indices, canaries.included, strict=True):
        trained[name].reshape(-1)[index] = -1.0 if inc else 0.0
    observer.observe(zero, {0: trained}, trained)
    # Act
    results = canary_results(dirac_scores(observer), epsilon=1.0, unit="example", delta=1e-5, confidence=0.95)
    # Assert
    assert [r.threat_model for r in results] == list(THREAT_MODELS.values())
    # (196 of 396 are in: guessing 198 "in" makes 2 wrong guesses, yet shows the most)
    assert [(r.guesses, r.correct) for r in results] == [(396, 394)] * 2
    assert all(r.epsilon_lower_bound > 3 for r in results)
    assert all(r.exceeds and r.confidence == pytest.approx(0.975) for r in results)
    assert results[0].included == sum(canaries.included)
