"""Dirac canaries inside a client's optimiser step, under DP-SGD (each grad-sample mode) and without DP."""

import math
import os

import numpy as np
import pytest
import torch
from torch import nn

from fedsim.audit.canaries import plan_dirac_canaries
from fedsim.client import TrainSpec, create_data_loader, create_optimizer, train
from fedsim.data import load_dataset
from fedsim.models import ModelSpec, build_model
from fedsim.privacy import make_private
from fedsim.privacy.canaries import TEST_NOISE_DIVISOR_ENV, apply_test_noise_divisor, attach_dirac_canaries
from fedsim.privacy.engine import GRAD_SAMPLE_MODES
from tests.fixtures.specs import data_spec

LR, BATCH, NORM = 0.5, 32, 0.7


def one_step(*, private: bool, mode: str = "ghost", canaries=None):
    """One optimiser step of the digits CNN on 300 real examples; returns (model, held coordinates)."""
    train_set, _ = load_dataset(data_spec("digits"))
    shard = train_set.subset(np.arange(300))
    model = build_model(
        ModelSpec("cnn", activation="relu"), input_shape=shard.input_shape, num_classes=10, seed=0
    )
    loader = create_data_loader(shard, batch_size=BATCH, shuffle=True, seed=1)
    optimizer = create_optimizer(model, TrainSpec(1, BATCH, LR, 0.0, local_steps=None))
    criterion, step_model = nn.CrossEntropyLoss(), model
    if private:
        wrapped = make_private(
            module=model,
            optimizer=optimizer,
            criterion=criterion,
            data_loader=loader,
            noise_multiplier=0.0,
            max_grad_norm=NORM,
            grad_sample_mode=mode,
        )
        optimizer, criterion, loader, step_model = (
            wrapped.optimizer,
            wrapped.criterion,
            wrapped.data_loader,
            wrapped.module,
        )
    held = ()
    if canaries:
        shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
        plan = plan_dirac_canaries(canaries, shapes=shapes, num_clients=1, norm=NORM, seed=3)
        held = plan.held_by(0)
        attach_dirac_canaries(
            optimizer, model, held, norm=NORM, sample_rate=1.0, batch_size=BATCH, seed=5, private=private
        )
    train(step_model, loader, optimizer=optimizer, criterion=criterion, epochs=1, device="cpu", max_steps=1)
    if private:
        wrapped.close()
    return model, held


def moved_by_canaries(private: bool, mode: str = "ghost"):
    """(parameter name, flat index) -> the weight's change that the canaries caused, and the held canaries."""
    plain, _ = one_step(private=private, mode=mode)
    marked, held = one_step(private=private, mode=mode, canaries=200)
    diff = {n: (marked.state_dict()[n] - plain.state_dict()[n]).reshape(-1) for n in plain.state_dict()}
    return diff, held


@pytest.mark.parametrize("mode", GRAD_SAMPLE_MODES)
def test_under_dp_sgd_each_canary_moves_its_coordinate_by_lr_norm_over_batch(mode):
    # Act
    diff, held = moved_by_canaries(private=True, mode=mode)
    # Assert: Opacus divides the (noisy) sum by its expected batch size n·q, the canary's term too
    expected_batch = 300 / math.ceil(300 / BATCH)  # Opacus's q = 1 / len(loader): 30 here
    assert len(held) > 50
    for name, index in held:
        assert diff[name][index].item() == pytest.approx(-LR * NORM / expected_batch, rel=1e-4)
    untouched = sum(int((d.abs() > 1e-7).sum()) for d in diff.values()) - len(held)
    assert untouched == 0


def test_without_dp_each_canary_adds_norm_over_batch_to_the_mean_gradient():
    # Act
    diff, held = moved_by_canaries(private=False)
    # Assert
    for name, index in held:
        assert diff[name][index].item() == pytest.approx(-LR * NORM / BATCH, rel=1e-4)
    assert sum(int((d.abs() > 1e-7).sum()) for d in diff.values()) == len(held)


def test_the_test_only_divisor_cuts_the_noise_and_nothing_else(monkeypatch):
    # Arrange
    optimizer = type("Opt", (), {"noise_multiplier": 1.5})()
    # Act
    apply_test_noise_divisor(optimizer)
    untouched = optimizer.noise_multiplier
    monkeypatch.setenv(TEST_NOISE_DIVISOR_ENV, "10")
    apply_test_noise_divisor(optimizer)
    # Assert
    assert untouched == 1.5 and optimizer.noise_multiplier == pytest.approx(0.15)
    assert TEST_NOISE_DIVISOR_ENV not in os.environ or os.environ[TEST_NOISE_DIVISOR_ENV] == "10"
    monkeypatch.setenv(TEST_NOISE_DIVISOR_ENV, "0")
    with pytest.raises(ValueError, match="must be a number > 0"):
        apply_test_noise_divisor(optimizer)


def test_canaries_on_parameters_the_model_lacks_are_refused():
    # Arrange
    model = nn.Linear(3, 2)
    # Act / Assert
    with pytest.raises(ValueError, match="not parameters of the trained model"):
        attach_dirac_canaries(
            torch.optim.SGD(model.parameters(), lr=0.1),
            model,
            [("lstm.weight_ih_l0", 0)],
            norm=1.0,
            sample_rate=0.5,
            batch_size=4,
            seed=0,
            private=False,
        )
