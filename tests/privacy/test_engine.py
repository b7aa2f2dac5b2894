import gc
import weakref

import pytest
import torch
from torch import nn

from fedsim.client import TrainSpec, create_data_loader, create_optimizer, train
from fedsim.data import load_dataset
from fedsim.models import ModelSpec, build_model
from fedsim.privacy import (
    PrivacyEvent,
    PrivacyLedger,
    compute_epsilon,
    make_private,
    make_trainable,
    plain_state_dict,
    poisson_sample_rate,
    steps_per_epoch,
)
from fedsim.privacy.engine import GRAD_SAMPLE_MODES
from tests.fixtures.specs import data_spec


def dp_round(model, shard, *, batch_size, learning_rate, noise_multiplier, mode, max_steps=None):
    """One local DP-SGD epoch (or ``max_steps``) on ``shard``; returns (PrivateTraining, TrainMetrics)."""
    loader = create_data_loader(shard, batch_size=batch_size, shuffle=True, seed=1)
    private = make_private(
        module=model,
        optimizer=create_optimizer(model, TrainSpec(1, batch_size, learning_rate, 0.0, local_steps=None)),
        criterion=nn.CrossEntropyLoss(),
        data_loader=loader,
        noise_multiplier=noise_multiplier,
        max_grad_norm=1.0,
        grad_sample_mode=mode,
    )
    result = train(
        private.module,
        private.data_loader,
        optimizer=private.optimizer,
        criterion=private.criterion,
        epochs=1,
        device=torch.device("cpu"),
        max_steps=max_steps,
    )
    return private, result


def test_dp_round_on_digits_reports_opacus_sample_rate_and_steps():
    # Arrange
    train_set, _ = load_dataset(data_spec("digits"))
    shard = train_set.subset(torch.arange(300).numpy())
    model = build_model(
        ModelSpec("cnn", activation="relu"), input_shape=shard.input_shape, num_classes=10, seed=0
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # Act
    private, result = dp_round(
        model, shard, batch_size=32, learning_rate=0.5, noise_multiplier=1.0, mode="ghost"
    )
    # Assert: Opacus's q is 1/len(loader) = 1/ceil(300/32), one epoch = int(1/q) steps
    assert private.sample_rate == poisson_sample_rate(300, 32) == 0.1
    assert result.steps == steps_per_epoch(private.sample_rate) == 10
    # The unwrapped model's keys carry no "_module." prefix, and its weights moved.
    state = model.state_dict()
    assert set(state) == set(before)
    assert any(not torch.equal(state[k], before[k]) for k in state)
    ledger = PrivacyLedger(delta=1e-5, accountant="rdp")
    ledger.record(0, server_round=1, event=PrivacyEvent(1.0, private.sample_rate, result.steps))
    assert 0 < ledger.epsilon(0) < 10


def test_dp_round_of_the_lstm_on_kjv_text():
    # Arrange: one book's training windows, the plain model made trainable under Opacus
    train_set, _ = load_dataset(
        data_spec(
            "kjv", window_length=80, window_stride=40, test_fraction=0.1, max_train_windows_per_user=256
        )
    )
    shard = train_set.subset(torch.nonzero(torch.as_tensor(train_set.groups == 0)).flatten().numpy())
    model = build_model(
        ModelSpec("lstm", activation="relu"),
        input_shape=(80,),
        num_classes=shard.num_classes,
        vocab_size=62,
        seed=0,
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainable = make_trainable(model)
    # Act
    private, result = dp_round(
        trainable, shard, batch_size=64, learning_rate=1.0, noise_multiplier=1.1, mode="hooks", max_steps=3
    )
    # Assert: Opacus's q = 1/ceil(256/64) = 1/4, 3 steps taken, the model's output shape
    assert len(shard) == 256 and private.sample_rate == 0.25 and result.steps == 3
    assert private.module(torch.as_tensor(shard.x[:7])).shape == (7, 62)
    state = plain_state_dict(trainable, before.keys())
    assert any(not torch.equal(state[k], before[k]) for k in before)
    # ε from the ledger is Opacus's RDP value for this history
    ledger = PrivacyLedger(delta=1e-5, accountant="rdp")
    ledger.record(0, server_round=1, event=PrivacyEvent(1.1, private.sample_rate, result.steps))
    assert ledger.epsilon(0) == compute_epsilon(((1.1, 0.25, 3),), delta=1e-5, accountant="rdp")
    assert 0 < ledger.epsilon(0) < 20


@pytest.mark.parametrize("mode", GRAD_SAMPLE_MODES)
def test_closing_private_training_frees_opacus_wrapper_without_the_collector(mode):
    # Arrange: two DP-SGD steps on digits; the first optimiser of a process may leave
    # import-time cycles behind, so collect once before the collector is turned off
    train_set, _ = load_dataset(data_spec("digits"))
    shard = train_set.subset(torch.arange(200).numpy())
    model = build_model(
        ModelSpec("cnn", activation="relu"), input_shape=shard.input_shape, num_classes=10, seed=0
    )
    private, _ = dp_round(
        model, shard, batch_size=32, learning_rate=0.5, noise_multiplier=1.0, mode=mode, max_steps=2
    )
    gc.collect()
    wrapper = weakref.ref(private.module)
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    # Act: close, drop the last reference, with only reference counting to free
    gc.disable()
    try:
        with private:
            pass
        del private
        freed = wrapper() is None
    finally:
        gc.enable()
    # Assert: the wrapper went at once; the model keeps its weights and no trace of Opacus
    assert freed
    assert all(not m._forward_hooks and not m._backward_hooks for m in model.modules())
    opacus_attrs = ("grad_sample", "summed_grad", "_forward_counter", "_current_grad_sample", "_norm_sample")
    assert not any(hasattr(p, attr) for p in model.parameters() for attr in opacus_attrs)
    assert all(torch.equal(v, trained[k]) for k, v in model.state_dict().items())
