"""The LSTM recurrence behind :class:`fedsim.privacy.layers.FastDPLSTM`, looped over time both ways.

``LSTMRecurrence`` is an autograd Function: the hidden-to-hidden loop of one layer
over time-major ``(T, B, ·)`` buffers, with a hand-written backward pass
(back-propagation through time, PyTorch's LSTM equations,
https://pytorch.org/docs/stable/generated/torch.nn.LSTM.html) that hands the
layer its gate gradient ``dG`` for the per-sample gradients. ``plain_recurrence`` is
the same loop in plain operations, which ``torch.func`` differentiates per
example (Opacus's functorch mode).
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable


def plain_recurrence(gates_x: torch.Tensor, weight_hh: torch.Tensor, hidden: int) -> torch.Tensor:
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


class LSTMRecurrence(torch.autograd.Function):
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
        """``dL/dh`` ``(T, B, H)`` → ``(dL/dG (T, B, 4H), dL/dW_hh (4H, H), None)``."""
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


def under_functorch(t: torch.Tensor) -> bool:
    """Whether a torch.func transform is active (Opacus's functorch mode differentiates the layer itself)."""
    return torch._C._are_functorch_transforms_active() or torch._C._functorch.is_functorch_wrapped_tensor(t)
