"""A DP-ready LSTM: the input projection of a whole sequence in one product, per-sample gradients by bmm.

Opacus's ``DPLSTM`` computes an LSTM one time step at a time through small
``RNNLinear`` modules, each with its own forward and backward hooks and its own
per-step per-sample gradient; on a CPU its DP-SGD step costs 8 to 12 times the
non-private step of PyTorch's fused ``nn.LSTM`` (``python -m bench.run --only dp``).

:class:`FastDPLSTM` computes the same function (PyTorch's LSTM equations,
https://pytorch.org/docs/stable/generated/torch.nn.LSTM.html, gate order
``i, f, g, o``) with one module per layer, :class:`LSTMLayer`:

* the input-to-hidden projection of every time step is one matrix product,
  ``(T, B, I) @ (I, 4H)``; only the hidden-to-hidden recurrence loops over time,
  in an autograd Function with a hand-written backward pass (back-propagation
  through time) that hands the layer the gradient of the loss with respect to
  the gate pre-activations, ``dG`` of shape ``(T, B, 4H)``;
* since every weight of the layer enters the loss through
  ``G_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh``, each example's gradient is a
  sum over time:

  - ``∂W_ih[n] = Σ_t dG[t, n] x[n, t]ᵀ`` and ``∂W_hh[n] = Σ_t dG[t, n] h[n, t-1]ᵀ``
    (two batched products, ``bmm``);
  - ``∂b_ih[n] = ∂b_hh[n] = Σ_t dG[t, n]``.

  These are registered with Opacus as the layer's grad sampler and norm
  sampler (``opacus.grad_sample.register_grad_sampler``,
  ``register_norm_sampler``), so the hooks and ghost modes compute per-sample
  gradients or their norms; under ghost clipping the second backward pass
  reuses the first pass's ``dG``, rescaled per example. The functorch mode
  differentiates the same forward, in plain operations, per example with
  ``torch.func``.

The parameters have ``nn.LSTM``'s names and shapes (``weight_ih_l0``,
``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``, ``…_l1``), so
``state_dict`` and ``load_state_dict`` read and write the plain model's weights.
Supports what fedsim's model uses: ``batch_first=True``, biases, no dropout,
unidirectional, no initial state, no packed sequences.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from opacus.grad_sample import register_grad_sampler, register_norm_sampler
from torch import nn

from fedsim.privacy.layers.recurrence import LSTMRecurrence, plain_recurrence, under_functorch


class LSTMLayer(nn.Module):
    """One LSTM layer over a whole batch-first sequence, with per-sample gradients for Opacus.

    Args:
        input_size: features per time step, I.
        hidden_size: units, H.

    Attributes:
        weight_ih: ``(4H, I)``; ``weight_hh``: ``(4H, H)``; ``bias_ih``, ``bias_hh``: ``(4H,)``
        (``nn.LSTM``'s layout, gates ``i, f, g, o``).
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        # Opacus's DPLSTM order, so that a seeded run draws the same noise for the same weight.
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size))
        self._kept: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``nn.LSTM``'s initialisation: every weight and bias uniform in ``±1/√H``."""
        bound = 1 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _keep(self, gate_grad: torch.Tensor, previous_h: torch.Tensor, output_grad: torch.Tensor) -> None:
        """Keep a backward pass's ``dG``, ``h_{t-1}`` and output gradient for the grad sampler."""
        self._kept = (gate_grad, previous_h, output_grad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, T, I)`` to the hidden states of every step, ``(B, T, H)``."""
        self._kept = None
        if under_functorch(x) or not torch.is_grad_enabled():
            gates_x = F.linear(x, self.weight_ih, self.bias_ih + self.bias_hh)  # (B, T, 4H)
            return plain_recurrence(gates_x, self.weight_hh, self.hidden_size)
        gates_x = F.linear(x.transpose(0, 1), self.weight_ih, self.bias_ih + self.bias_hh)  # (T, B, 4H)
        hs = LSTMRecurrence.apply(gates_x, self.weight_hh, self if self.training else None)  # (T, B, H)
        return hs.transpose(0, 1)


@register_grad_sampler(LSTMLayer)
def lstm_layer_grad_sample(
    layer: LSTMLayer, activations: list[torch.Tensor], backprops: torch.Tensor
) -> dict[nn.Parameter, torch.Tensor]:
    """Per-sample gradients of one :class:`LSTMLayer` (Opacus grad-sampler signature).

    Args:
        layer: the layer, holding the gate gradient ``dG`` ``(B, T, 4H)`` and the
            hidden states ``(B, T, H)`` of the backward pass that calls this.
        activations: ``[x]``, the layer's input ``(B, T, I)``.
        backprops: the gradient of the loss with respect to the layer's output,
            ``(B, T, H)``, scaled by Opacus for its loss reduction (× B for a
            mean); ``dG`` gets the same scale.

    Returns:
        For each parameter, its per-sample gradients ``(B, *param.shape)``.

    Raises:
        RuntimeError: if the layer kept no gradients (the forward ran outside training).
    """
    kept, layer._kept = layer._kept, None
    if kept is None:
        raise RuntimeError(
            "LSTMLayer kept no gradients: call it in training mode with gradients enabled, "
            "through FastDPLSTM (which makes the first layer's input require a gradient)"
        )
    gate_grad, previous, output_grad = kept  # time-major: (T, B, 4H), (T, B, H), (T, B, H)
    scale = (backprops.transpose(0, 1) * output_grad).sum() / (output_grad * output_grad).sum().clamp_min(
        1e-30
    )
    d_gates = (gate_grad * scale).permute(1, 2, 0)  # (B, 4H, T), a view
    d_bias = d_gates.sum(2)  # (B, 4H)
    return {
        layer.weight_ih: torch.bmm(d_gates, activations[0]),  # Σ_t dG_t x_tᵀ: (B, 4H, I)
        layer.weight_hh: torch.bmm(d_gates, previous.transpose(0, 1)),  # Σ_t dG_t h_{t-1}ᵀ
        layer.bias_ih: d_bias,
        layer.bias_hh: d_bias.clone(),
    }


@register_norm_sampler(LSTMLayer)
def lstm_layer_norm_sample(
    layer: LSTMLayer, activations: list[torch.Tensor], backprops: torch.Tensor
) -> dict[nn.Parameter, torch.Tensor]:
    """Per-sample gradient norms ``(B,)`` of one :class:`LSTMLayer`, for Opacus's ghost clipping.

    The per-sample gradients of :func:`lstm_layer_grad_sample`, reduced to their
    norms here (Opacus would otherwise copy them into its own buffers first).
    """
    return {
        p: g.flatten(1).norm(dim=1) for p, g in lstm_layer_grad_sample(layer, activations, backprops).items()
    }


class FastDPLSTM(nn.Module):
    """A stack of :class:`LSTMLayer` that stands in for a batch-first ``nn.LSTM`` under DP-SGD.

    Args:
        input_size: features per step of the first layer.
        hidden_size: units per layer.
        num_layers: stacked layers (each reads the previous one's sequence).

    The parameters are named as ``nn.LSTM``'s (``weight_ih_l0`` …) in
    ``state_dict``; :meth:`from_lstm` copies a plain LSTM's weights.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.layers = nn.ModuleList(
            LSTMLayer(input_size if k == 0 else hidden_size, hidden_size) for k in range(num_layers)
        )
        self._register_state_dict_hook(_plain_names)
        self._register_load_state_dict_pre_hook(_layer_names)

    @classmethod
    def from_lstm(cls, lstm: nn.LSTM) -> FastDPLSTM:
        """The same LSTM (same weights) as a :class:`FastDPLSTM`.

        Raises:
            ValueError: for an ``nn.LSTM`` option this layer does not implement
                (not batch-first, no bias, dropout, bidirectional, projections).
        """
        unsupported = {
            "batch_first=False": not lstm.batch_first,
            "bias=False": not lstm.bias,
            "dropout": lstm.dropout > 0,
            "bidirectional": lstm.bidirectional,
            "proj_size": lstm.proj_size > 0,
        }
        named = [name for name, bad in unsupported.items() if bad]
        if named:
            raise ValueError(
                f"FastDPLSTM does not implement nn.LSTM with {', '.join(named)}; "
                "use Opacus's DPLSTM instead (privacy.dp-lstm = 'opacus')"
            )
        fast = cls(lstm.input_size, lstm.hidden_size, lstm.num_layers)
        fast = fast.to(device=lstm.weight_ih_l0.device, dtype=lstm.weight_ih_l0.dtype)
        fast.load_state_dict(lstm.state_dict())
        return fast

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        """Map ``(B, T, I)`` to ``(out (B, T, H), None)``, ``out`` as ``nn.LSTM``'s (no final states)."""
        if self.training and torch.is_grad_enabled() and not x.requires_grad:
            # Opacus's backward hook on the first layer must fire after the layer's own
            # backward (not when its output's gradient arrives), which needs an input with a gradient.
            x = x.detach().requires_grad_(True)
        for layer in self.layers:
            x = layer(x)
        return x, None


_SUFFIXES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
"""``nn.LSTM``'s parameter names per layer, in its ``state_dict`` order."""


def _plain_names(module: FastDPLSTM, state: dict, prefix: str, _local_metadata) -> dict:
    """State-dict hook: ``layers.0.weight_ih`` → ``weight_ih_l0`` (``nn.LSTM``'s names)."""
    for k in range(module.num_layers):
        for suffix in _SUFFIXES:
            state[f"{prefix}{suffix}_l{k}"] = state.pop(f"{prefix}layers.{k}.{suffix}")
    return state


def _layer_names(state: dict, prefix: str, *_args) -> None:
    """Load-state-dict pre-hook: ``weight_ih_l0`` → ``layers.0.weight_ih``."""
    for key in [k for k in state if k.startswith(prefix)]:
        name = key[len(prefix) :]
        suffix, _, layer = name.rpartition("_l")
        if suffix in _SUFFIXES and layer.isdigit():
            state[f"{prefix}layers.{layer}.{suffix}"] = state.pop(key)
