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
from torch.autograd.function import once_differentiable


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
        if _under_functorch(x) or not torch.is_grad_enabled():
            gates_x = F.linear(x, self.weight_ih, self.bias_ih + self.bias_hh)  # (B, T, 4H)
            return _recurrence(gates_x, self.weight_hh, self.hidden_size)
        gates_x = F.linear(x.transpose(0, 1), self.weight_ih, self.bias_ih + self.bias_hh)  # (T, B, 4H)
        hs = _Recurrence.apply(gates_x, self.weight_hh, self if self.training else None)  # (T, B, H)
        return hs.transpose(0, 1)


def _recurrence(gates_x: torch.Tensor, weight_hh: torch.Tensor, hidden: int) -> torch.Tensor:
    """The hidden-to-hidden loop in plain operations (what ``torch.func`` differentiates per example).

    Maps ``(B, T, 4H)`` input gates (biases included) to ``(B, T, H)`` hidden states.
    """
    batch = gates_x.shape[0]
    h = gates_x.new_zeros(batch, hidden)
    c = gates_x.new_zeros(batch, hidden)
    w = weight_hh.t()
    states = []
    for g_x in gates_x.unbind(1):
        gates = torch.addmm(g_x, h, w)  # (B, 4H): i, f, g, o
        sig = torch.sigmoid(gates)
        c = sig[:, hidden : 2 * hidden] * c + sig[:, :hidden] * torch.tanh(gates[:, 2 * hidden : 3 * hidden])
        h = sig[:, 3 * hidden :] * torch.tanh(c)
        states.append(h)
    return torch.stack(states, 1)


class _Recurrence(torch.autograd.Function):
    """The hidden-to-hidden loop, time-major, with a hand-written backward pass (BPTT).

    Every step writes into preallocated ``(T, B, ·)`` buffers (eight operations
    forward, five backward, no per-step copies); the backward pass hands the gate
    gradient ``dG`` to the layer for its per-sample gradients.
    """

    @staticmethod
    def forward(ctx, gates_x, weight_hh, layer):
        """``(T, B, 4H)`` input gates (biases included) → ``(T, B, H)`` hidden states."""
        steps, batch, four_h = gates_x.shape
        hidden = four_h // 4
        acts = torch.empty_like(gates_x)  # activated gates i, f, g, o
        cells = gates_x.new_empty(steps, batch, hidden)
        tanh_cells = torch.empty_like(cells)
        hs = torch.empty_like(cells)
        h = gates_x.new_zeros(batch, hidden)
        c = gates_x.new_zeros(batch, hidden)
        w = weight_hh.t()
        for t in range(steps):
            a = torch.addmm(gates_x[t], h, w, out=acts[t])
            a[:, : 2 * hidden].sigmoid_()
            a[:, 2 * hidden : 3 * hidden].tanh_()
            a[:, 3 * hidden :].sigmoid_()
            c = torch.addcmul(
                a[:, hidden : 2 * hidden] * c, a[:, :hidden], a[:, 2 * hidden : 3 * hidden], out=cells[t]
            )
            h = torch.mul(a[:, 3 * hidden :], torch.tanh(c, out=tanh_cells[t]), out=hs[t])
        ctx.save_for_backward(weight_hh, hs, cells, tanh_cells, acts)
        ctx.layer = layer
        return hs

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_hs):
        weight_hh, hs, cells, tanh_cells, acts = ctx.saved_tensors
        grad_hs = grad_hs.contiguous()
        first = getattr(ctx, "first_pass", None)
        scale = _per_example_multiple(grad_hs, first[0]) if first is not None else None
        if scale is not None:  # ghost clipping's second pass: each example's dG, rescaled
            d_gates, previous_h = first[1] * scale[:, None], first[2]
            ctx.first_pass = None
        else:
            d_gates = _backward_through_time(grad_hs, weight_hh, cells, tanh_cells, acts)
            previous_h = torch.cat([torch.zeros_like(hs[:1]), hs[:-1]])  # h_{t-1}: (T, B, H)
            ctx.first_pass = (grad_hs, d_gates, previous_h)
            if ctx.layer is not None:
                ctx.layer._keep(d_gates, previous_h, grad_hs)
        grad_weight_hh = d_gates.flatten(0, 1).t() @ previous_h.flatten(0, 1)  # (4H, H)
        return d_gates, grad_weight_hh, None


def _backward_through_time(grad_hs, weight_hh, cells, tanh_cells, acts) -> torch.Tensor:
    """The gate gradient ``dG`` ``(T, B, 4H)`` from the hidden states' gradient ``(T, B, H)``.

    PyTorch's LSTM equations differentiated by hand: with ``dh_t`` the total
    gradient of ``h_t`` and ``dc_t = dh_t·o_t·(1 - tanh²c_t) + dc_{t+1}·f_{t+1}``,
    ``dG_t = [dc_t·g_t·i_t(1-i_t), dc_t·c_{t-1}·f_t(1-f_t), dc_t·i_t·(1-g_t²), dh_t·tanh(c_t)·o_t(1-o_t)]``
    and ``dh_{t-1} += dG_t W_hh``.
    """
    steps, batch, hidden = cells.shape
    i, f, g, o = acts.split(hidden, dim=2)  # (T, B, H) each
    previous_c = torch.cat([torch.zeros_like(cells[:1]), cells[:-1]])
    factors = torch.cat(
        [g * i * (1 - i), previous_c * f * (1 - f), i * (1 - g * g), tanh_cells * o * (1 - o)], 2
    )
    dc_factor = o * (1 - tanh_cells * tanh_cells)  # ∂c_t of dh_t
    d_gates = torch.empty_like(acts)  # (T, B, 4H)
    dh, dc = grad_hs[-1], None
    for t in range(steps - 1, -1, -1):
        if dc is None:
            dc = dh * dc_factor[t]
        else:
            dh = torch.addmm(grad_hs[t], d_gates[t + 1], weight_hh)
            dc = torch.addcmul(dc * f[t + 1], dh, dc_factor[t])
        ifg = d_gates[t, :, : 3 * hidden].view(batch, 3, hidden)
        torch.mul(factors[t, :, : 3 * hidden].view(batch, 3, hidden), dc.unsqueeze(1), out=ifg)
        torch.mul(factors[t, :, 3 * hidden :], dh, out=d_gates[t, :, 3 * hidden :])
    return d_gates


def _per_example_multiple(grad: torch.Tensor, first: torch.Tensor, tol: float = 1e-5) -> torch.Tensor | None:
    """Factors ``k`` ``(B,)`` with ``grad[:, n] = k[n]·first[:, n]`` for every example, or None.

    The backward pass is linear in the output gradient and each example's part
    depends on that example alone, so when a second backward pass over the same
    graph brings each example's output gradient times a factor (Opacus's ghost
    clipping: the per-example loss times its clipping coefficient, Li et al.
    2021, https://arxiv.org/abs/2110.05679), its gate gradient is the first
    pass's times the same factor, with no second loop over time.
    """
    if grad.shape != first.shape:
        return None
    dims = (0, 2)
    k = (grad * first).sum(dims) / (first * first).sum(dims).clamp_min(1e-30)  # (B,)
    residual = (grad - first * k[:, None]).norm()
    return k if residual <= tol * grad.norm() + 1e-30 else None


def _under_functorch(t: torch.Tensor) -> bool:
    """Whether a torch.func transform is active (Opacus's functorch mode differentiates the layer itself)."""
    return torch._C._are_functorch_transforms_active() or torch._C._functorch.is_functorch_wrapped_tensor(t)


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
