"""FedProx's proximal term on a client (Li et al. 2020, https://arxiv.org/abs/1812.06127).

FedProx adds ``(mu / 2) * ||w - w_global||²`` to each client's local loss, whose
gradient is ``mu * (w - w_global)``. That gradient depends on the weights only,
never on an example, so it is added to the optimiser's gradient at each step,
*after* whatever produced that gradient: under Opacus DP-SGD the hook runs on
the plain optimiser that Opacus wraps, which steps only once the per-example
gradients are clipped and noised. The term therefore costs no privacy: the
ledger's ε is the same with or without it.
"""

from __future__ import annotations

import torch
from torch import nn


def attach_proximal_term(optimizer: torch.optim.Optimizer, model: nn.Module, mu: float) -> None:
    """Add ``mu * (w - w_global)`` to every trainable parameter's gradient before each step.

    Args:
        optimizer: the client's plain PyTorch optimiser (under DP-SGD: the one
            Opacus wraps, so the term is added after clipping and noise).
        model: the model the optimiser steps, holding the global weights now
            (they are copied here as ``w_global``).
        mu: the proximal weight (≥ 0; 0 attaches nothing: FedAvg's local step).

    Raises:
        ValueError: if ``mu`` is negative or not finite.

    Example:
        >>> model = nn.Linear(1, 1, bias=False)
        >>> with torch.no_grad():
        ...     _ = model.weight.fill_(1.0)  # the global weight
        >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        >>> attach_proximal_term(optimizer, model, mu=1.0)
        >>> with torch.no_grad():
        ...     _ = model.weight.fill_(3.0)  # local training moved it away
        >>> model.weight.grad = torch.zeros_like(model.weight)  # no data gradient
        >>> optimizer.step()  # w <- 3 - 0.5 * 1.0 * (3 - 1)
        >>> float(model.weight.detach())
        2.0
    """
    if not (mu >= 0 and mu < float("inf")):
        raise ValueError(f"proximal mu must be a finite number ≥ 0, got {mu}")
    if mu == 0:
        return
    params = [p for p in model.parameters() if p.requires_grad]
    anchors = [p.detach().clone() for p in params]

    def add_proximal_gradient(opt, args, kwargs) -> None:
        with torch.no_grad():
            for p, w_global in zip(params, anchors, strict=True):
                term = mu * (p - w_global)
                p.grad = term if p.grad is None else p.grad.add_(term)

    optimizer.register_step_pre_hook(add_proximal_gradient)
