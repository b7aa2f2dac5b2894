"""Evaluation between rounds on a seeded subset of the test set; the whole test set at both ends."""

import numpy as np
import pytest
import torch
from flwr.app import ArrayRecord

from fedsim.client import EvaluationSpec, evaluate
from fedsim.data import load_dataset
from fedsim.models import ModelSpec, build_model
from fedsim.simulation.recorder import RoundRecorder
from tests.fixtures.specs import data_spec

NO_PRIVACY = dict.fromkeys(
    (
        "epsilon_max",
        "epsilon_mean",
        "noise_multiplier",
        "max_grad_norm",
        "user_noise_multiplier",
        "clipping_norm",
        "user_epsilon",
    )
)


def test_round_subset_is_seeded_sorted_and_a_subset():
    _, test_set = load_dataset(data_spec("digits"))
    spec = EvaluationSpec(round_examples=100)
    a, b = spec.round_subset(test_set, seed=3), spec.round_subset(test_set, seed=3)
    other = spec.round_subset(test_set, seed=4)
    assert len(a) == 100 and np.array_equal(a.x, b.x) and not np.array_equal(a.x, other.x)
    # every example of the subset is a test example
    rows = {row.tobytes() for row in np.asarray(test_set.x)}
    assert all(row.tobytes() in rows for row in np.asarray(a.x))
    assert EvaluationSpec(round_examples=None).round_subset(test_set, seed=3) is test_set
    assert EvaluationSpec(round_examples=10**6).round_subset(test_set, seed=3) is test_set
    with pytest.raises(ValueError, match="round_examples must be ≥ 1"):
        EvaluationSpec(round_examples=0)


def test_rounds_in_between_use_the_subset_and_a_run_stopped_early_is_measured_on_all():
    # Arrange: a real model on the digits test set, 5 rounds planned, the subset of 50
    _, test_set = load_dataset(data_spec("digits"))
    model = build_model(ModelSpec("cnn", activation="relu"), input_shape=(1, 8, 8), num_classes=10, seed=0)
    subset = EvaluationSpec(round_examples=50).round_subset(test_set, seed=0)
    recorder = RoundRecorder(
        test_set=test_set, model=model, device=torch.device("cpu"), round_test_set=subset, last_round=5
    )
    arrays = ArrayRecord(model.state_dict())
    # Act: the initial model, then two rounds, then the run stops (a budget rule)
    for server_round in (0, 1, 2):
        recorder.close_round(server_round, arrays, NO_PRIVACY)
    before = recorder.rounds[-1]
    recorder.finish()
    # Assert
    assert [r.test_examples for r in recorder.rounds] == [len(test_set), 50, len(test_set)]
    assert before.test_examples == 50
    whole = evaluate(model, test_set, device=torch.device("cpu"))
    assert recorder.rounds[-1].accuracy == whole.accuracy == recorder.rounds[0].accuracy
    assert recorder.rounds[1].accuracy == evaluate(model, subset, device=torch.device("cpu")).accuracy
