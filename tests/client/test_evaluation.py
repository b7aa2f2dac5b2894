"""Evaluation between rounds on a seeded subset of the test set; the whole test set at both ends."""

import numpy as np
import pytest
import torch
from flwr.app import ArrayRecord

from fedsim.client import EvaluationSpec, evaluate
from fedsim.data import load_dataset
from fedsim.models import ModelSpec, build_model
from fedsim.privacy.accounting import ROUND_FIGURES
from fedsim.simulation.recorder import RoundRecorder
from tests.fixtures.specs import data_spec

NO_PRIVACY = dict.fromkeys(ROUND_FIGURES)  # a run without DP


def test_round_subset_is_seeded_sorted_and_a_subset():
    _, test_set = load_dataset(data_spec("digits"))
    spec = EvaluationSpec(round_examples=100)
    a, b = spec.round_subset(test_set, seed=3), spec.round_subset(test_set, seed=3)
    other = spec.round_subset(test_set, seed=4)
    assert len(a) == 100 and np.array_equal(a.x, b.x) and not np.array_equal(a.x, other.x)
    # the subset is test rows in their order, each at most once: test the drawn rows themselves
    drawn = []

    class Rows:
        def __len__(self):
            return len(test_set)

        def subset(self, rows):
            drawn.append(rows)
            return test_set.subset(rows)

    spec.round_subset(Rows(), seed=3)
    (rows,) = drawn
    assert np.all(np.diff(rows) > 0) and rows.min() >= 0 and rows.max() < len(test_set)
    assert np.array_equal(test_set.subset(rows).x, a.x)
    assert EvaluationSpec(round_examples=None).round_subset(test_set, seed=3) is test_set
    assert EvaluationSpec(round_examples=10**6).round_subset(test_set, seed=3) is test_set
    with pytest.raises(ValueError, match="round_examples must be ≥ 1"):
        EvaluationSpec(round_examples=0)


def _weights(model, scale):
    """The model's weights times ``scale``, as the server's arrays of one round."""
    return ArrayRecord({k: v * scale for k, v in model.state_dict().items()})


@pytest.mark.parametrize("stopped_early", [True, False])
def test_rounds_in_between_use_the_subset_and_the_last_round_all(stopped_early):
    # Arrange: a real model on the digits test set, 3 rounds planned, the subset of 50
    _, test_set = load_dataset(data_spec("digits"))
    model = build_model(ModelSpec("cnn", activation="relu"), input_shape=(1, 8, 8), num_classes=10, seed=0)
    subset = EvaluationSpec(round_examples=50).round_subset(test_set, seed=0)
    recorder = RoundRecorder(
        test_set=test_set, model=model, device=torch.device("cpu"), round_test_set=subset, last_round=3
    )
    rounds = (0, 1, 2) if stopped_early else (0, 1, 2, 3)
    # Act: other weights every round; a run stopped early (a budget rule) ends after round 2
    for server_round in rounds:
        recorder.close_round(server_round, _weights(model, 1 + server_round), NO_PRIVACY)
    recorder.finish()
    # Assert: both ends on all examples, with the last round's weights; round 1 on the subset
    n = len(test_set)
    assert [r.test_examples for r in recorder.rounds] == ([n, 50, n] if stopped_early else [n, 50, 50, n])
    last = evaluate(model, test_set, device=torch.device("cpu"))  # the recorder's model: the last round's
    assert (recorder.rounds[-1].loss, recorder.rounds[-1].accuracy) == (last.loss, last.accuracy)
    assert recorder.rounds[1].loss != recorder.rounds[-1].loss
