"""fedsim's FastDPLSTM: nn.LSTM's function and gradients, exact per-sample gradients in every mode."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from opacus import GradSampleModule
from opacus.grad_sample import GradSampleModuleFastGradientClipping
from opacus.layers import DPLSTM
from torch import nn

from fedsim.data import load_dataset
from fedsim.models import ModelSpec, build_model
from fedsim.privacy import DPSGDSpec, make_private, make_trainable, plain_state_dict
from fedsim.privacy.layers import FastDPLSTM
from fedsim.scenario import build_run_spec, load_scenario
from fedsim.simulation.client_app import run_client_round
from fedsim.simulation.run import client_task
from tests.fixtures.specs import data_spec


def _fashion_rows(n):
    """``n`` Fashion-MNIST training images as 28 steps of 28 pixels, with their labels."""
    train_set, _ = load_dataset(data_spec("fashion-mnist"))
    x = torch.tensor(np.asarray(train_set.x[:n]), dtype=torch.float32).reshape(n, 28, 28)
    return x, torch.as_tensor(np.asarray(train_set.y[:n]))


def _layer_name(fast_name: str) -> str:
    """``rnn.layers.1.weight_hh`` → ``rnn.weight_hh_l1`` (the nn.LSTM name)."""
    prefix, _, rest = fast_name.partition("layers.")
    layer, _, suffix = rest.partition(".")
    return f"{prefix}{suffix}_l{layer}"


class _Classifier(nn.Module):
    """The seed's RNN shape: LSTM(64) x 2 → dense head on the last step."""

    def __init__(self, rnn):
        super().__init__()
        self.rnn, self.head = rnn, nn.Linear(rnn.hidden_size, 10)

    def forward(self, x):
        return self.head(self.rnn(x)[0][:, -1])


def test_fast_lstm_computes_nn_lstm_outputs_and_gradients():
    # Arrange: real images read row by row, the same weights in both layers
    torch.manual_seed(0)
    x, _ = _fashion_rows(64)
    lstm = nn.LSTM(28, 64, num_layers=2, batch_first=True)
    fast = FastDPLSTM.from_lstm(lstm)
    # Act
    expected, _ = lstm(x)
    got, _ = fast(x)
    (expected**2).mean().backward()
    (got**2).mean().backward()
    # Assert: outputs and every weight's gradient agree to 1e-5 (relative to the largest entry)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    fast_params = dict(fast.named_parameters())
    for name, p in lstm.named_parameters():
        suffix, _, layer = name.rpartition("_l")
        q = fast_params[f"layers.{layer}.{suffix}"]
        scale = p.grad.abs().max()
        assert float((q.grad - p.grad).abs().max() / scale) < 1e-5, name


def test_fast_lstm_reads_and_writes_the_plain_lstm_weights():
    model = build_model(
        ModelSpec("lstm", activation="relu"), input_shape=(80,), num_classes=62, vocab_size=62, seed=0
    )
    x = torch.randint(0, 62, (5, 80))
    trainable = make_trainable(model)
    assert isinstance(trainable.lstm, FastDPLSTM)
    assert list(trainable.state_dict()) == list(model.state_dict())
    torch.testing.assert_close(trainable(x), model(x), atol=1e-6, rtol=1e-5)
    fresh = build_model(
        ModelSpec("lstm", activation="relu"), input_shape=(80,), num_classes=62, vocab_size=62, seed=1
    )
    fresh.load_state_dict(plain_state_dict(trainable, model.state_dict().keys()))
    torch.testing.assert_close(fresh(x), model(x))


def test_opacus_dplstm_stays_selectable():
    model = build_model(ModelSpec("lstm", activation="relu"), input_shape=(1, 28, 28), num_classes=10, seed=0)
    assert isinstance(make_trainable(model, "opacus").lstm, DPLSTM)
    with pytest.raises(ValueError, match="dp_lstm must be one of"):
        make_trainable(model, "cudnn")


def test_fast_lstm_refuses_options_it_does_not_implement():
    with pytest.raises(ValueError, match="bidirectional, proj_size"):
        FastDPLSTM.from_lstm(nn.LSTM(4, 8, batch_first=True, bidirectional=True, proj_size=2))
    with pytest.raises(ValueError, match="batch_first=False"):
        FastDPLSTM.from_lstm(nn.LSTM(4, 8))


def _wrap(model, mode):
    if mode == "ghost":
        return GradSampleModuleFastGradientClipping(model, max_grad_norm=1e9, use_ghost_clipping=True)
    return GradSampleModule(model, force_functorch=mode == "functorch")


@pytest.mark.parametrize("mode", ["hooks", "functorch", "ghost"])
def test_per_sample_gradients_equal_one_backward_per_example(mode):
    # Arrange: float64, so that the comparison measures the method, not rounding
    torch.manual_seed(0)
    x, y = _fashion_rows(6)
    x = x.double()
    lstm = nn.LSTM(28, 64, num_layers=2, batch_first=True).double()
    reference = _Classifier(lstm).double()
    model = _Classifier(FastDPLSTM.from_lstm(lstm)).double()
    model.head.load_state_dict(reference.head.state_dict())
    per_example = []
    for n in range(len(y)):
        reference.zero_grad()
        nn.functional.cross_entropy(reference(x[n : n + 1]), y[n : n + 1]).backward()
        per_example.append({k: p.grad.clone() for k, p in reference.named_parameters()})
    # Act: Opacus's per-sample gradients (or, under ghost clipping, their norms) of the mean loss
    nn.functional.cross_entropy(_wrap(model, mode)(x), y).backward()
    # Assert
    for name, p in model.named_parameters():
        want = torch.stack([g[_layer_name(name) if "layers." in name else name] for g in per_example])
        if mode == "ghost":
            torch.testing.assert_close(p._norm_sample, want.flatten(1).norm(dim=1), rtol=1e-10, atol=0)
        else:
            torch.testing.assert_close(p.grad_sample, want, rtol=1e-10, atol=1e-12)


def test_a_client_round_gives_the_same_privacy_event_and_weights_with_either_layer():
    # Arrange: a real DP-SGD round of the LSTM on digits, noise and sampling seeded alike
    scenario = load_scenario(
        "scenarios/digits-smoke.toml",
        ["model.name=lstm", "federation.local-steps=3", "privacy.grad-sample-mode=hooks"],
    )
    spec = build_run_spec(scenario)
    state = build_model(spec.model, input_shape=(1, 8, 8), num_classes=10, seed=0).state_dict()
    # Act
    rounds = {}
    for layer in ("fast", "opacus"):
        task = replace(client_task(spec), dp_sgd=DPSGDSpec("hooks", secure_mode=False, dp_lstm=layer))
        rounds[layer] = run_client_round(task, partition_id=0, server_round=1, state_dict=state)
    # Assert: the ledger's entry is the same, and the weights agree to float precision
    (fast_state, fast_metrics), (opacus_state, opacus_metrics) = rounds["fast"], rounds["opacus"]
    assert fast_metrics == {**opacus_metrics, "train-loss": fast_metrics["train-loss"]}
    assert fast_metrics["train-loss"] == pytest.approx(opacus_metrics["train-loss"], rel=1e-4)
    assert fast_metrics["steps"] == 3
    for key, value in opacus_state.items():
        torch.testing.assert_close(fast_state[key], value, atol=1e-5, rtol=1e-4)
    assert any(not torch.equal(fast_state[k], state[k]) for k in state)


def test_ghost_clipping_gives_the_clipped_gradient_of_per_sample_hooks(monkeypatch):
    # Arrange: the same batch, weights and clipping bound; no noise, so the steps compare exactly
    torch.manual_seed(0)
    x, y = _fashion_rows(32)
    lstm = nn.LSTM(28, 64, num_layers=2, batch_first=True)
    head = nn.Linear(64, 10).state_dict()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
    grads, loops = {}, []
    import fedsim.privacy.layers.recurrence as layer_module

    loop = layer_module._backward_through_time
    monkeypatch.setattr(layer_module, "_backward_through_time", lambda *a: loops.append(1) or loop(*a))
    for mode in ("hooks", "ghost"):
        loops.clear()
        model = _Classifier(FastDPLSTM.from_lstm(lstm))
        model.head.load_state_dict(head)
        private = make_private(
            module=model,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            criterion=nn.CrossEntropyLoss(),
            data_loader=loader,
            noise_multiplier=0.0,
            max_grad_norm=0.05,  # small enough that every example is clipped
            grad_sample_mode=mode,
        )
        # Act: one step's clipped, summed and averaged gradient
        with private:
            private.optimizer.zero_grad()
            private.criterion(private.module(x), y).backward()
            private.optimizer.pre_step()
            grads[mode] = {k: p.grad.clone() for k, p in model.named_parameters()}
        # one loop over time per layer: ghost clipping's second pass reuses the first
        assert len(loops) == 2, mode
    # Assert: ghost clipping's second backward pass (the rescaled first one) gives the same step
    for name, grad in grads["hooks"].items():
        torch.testing.assert_close(grads["ghost"][name], grad, atol=1e-6, rtol=1e-4)
    assert max(g.abs().max() for g in grads["hooks"].values()) > 0
