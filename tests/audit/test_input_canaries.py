"""Mislabelled input canaries: drawn from the test set, held out of evaluation, wrong labels, fair coins."""

import numpy as np
import pytest

from fedsim.audit.input_canaries import plan_input_canaries
from fedsim.data import load_dataset
from fedsim.simulation.shards import client_shard, training_shard
from tests.fixtures.specs import data_spec, partition_spec


@pytest.fixture(scope="module")
def digits_test_set():
    return load_dataset(data_spec("digits"))[1]


def test_canaries_are_test_examples_with_a_wrong_label(digits_test_set):
    # Act
    canaries = plan_input_canaries(200, test_set=digits_test_set, num_clients=3, seed=0)
    examples = canaries.examples(digits_test_set)
    # Assert
    assert len(set(canaries.indices)) == 200 and len(examples) == 200
    assert np.array_equal(examples.x, digits_test_set.x[list(canaries.indices)])
    assert not np.any(examples.y == digits_test_set.y[list(canaries.indices)])
    assert examples.y.min() >= 0 and examples.y.max() < 10
    assert 70 < sum(canaries.included) < 130 and set(canaries.holders) == {0, 1, 2}


def test_canaries_are_held_out_of_evaluation(digits_test_set):
    # Arrange
    canaries = plan_input_canaries(50, test_set=digits_test_set, num_clients=3, seed=1)
    # Act
    evaluated = canaries.evaluation_set(digits_test_set)
    # Assert
    assert len(evaluated) == len(digits_test_set) - 50
    rows = {x.tobytes() for x in evaluated.x}
    assert not any(digits_test_set.x[i].tobytes() in rows for i in canaries.indices)


def test_a_client_trains_on_its_shard_and_the_included_canaries_it_holds(digits_test_set):
    # Arrange
    data, split = data_spec("digits"), partition_spec("iid", 3, seed=0)
    canaries = plan_input_canaries(60, test_set=digits_test_set, num_clients=3, seed=2)
    # Act
    shard = training_shard(data, split, 1, canaries)
    # Assert
    plain = client_shard(data, split, 1)
    held = canaries.held_by(1, digits_test_set)
    assert len(shard) == len(plain) + len(held) == len(plain) + canaries.per_client(3)[1]
    assert np.array_equal(shard.y[len(plain) :], held.y)
    assert training_shard(data, split, 1, None) is plain


def test_too_many_input_canaries_are_refused(digits_test_set):
    # Act / Assert
    with pytest.raises(ValueError, match="input canaries must be between 2 and"):
        plan_input_canaries(len(digits_test_set), test_set=digits_test_set, num_clients=3, seed=0)
