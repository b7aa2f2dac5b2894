"""Dirac gradient canaries inside a client's optimiser steps, and the test-only hook that breaks DP-SGD.

A canary planned by :func:`fedsim.audit.canaries.plan_dirac_canaries` is one
more example of its holder whose gradient is ``norm · e_j`` (one coordinate
``j``). In every optimiser step each of the client's included canaries is
sampled independently with the client's Poisson rate q (Steinke, Nasr and
Jagielski 2023, https://arxiv.org/abs/2305.08846, Sec. 6: "Dirac canaries"):

* under DP-SGD its gradient is added to Opacus's sum of clipped per-example
  gradients, before the noise (``DPOptimizer.add_noise``); its norm is the
  clipping norm, so it is exactly as strong as clipping lets any example be,
  and Opacus then divides the noisy sum by the expected batch size as for
  every example;
* without DP it is added to the batch's mean gradient as ``norm / B``
  (``B`` the batch size) before the optimiser's step.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import nn

TEST_NOISE_DIVISOR_ENV = "FEDSIM_TEST_ONLY_NOISE_DIVISOR"
"""Test-only: when set (e.g. ``10``), clients add that many times *less* noise than their
ledger records: a broken mechanism, for the test that the audit catches one (Opacus
issue #571 was such a finding). No scenario key reaches it."""


def _canary_tensors(
    module: nn.Module, held: Sequence[tuple[str, int]]
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(parameter, flat indices (k,))`` per parameter that holds some of ``held``'s coordinates."""
    params = dict(module.named_parameters())
    missing = sorted({name for name, _ in held} - set(params))
    if missing:
        raise ValueError(
            f"the canaries' weights {missing} are not parameters of the trained model "
            '(Opacus\'s DPLSTM renames them: use privacy.dp-lstm = "fast")'
        )
    by_name: dict[str, list[int]] = {}
    for name, index in held:
        by_name.setdefault(name, []).append(index)
    return [(params[name], torch.tensor(indices, dtype=torch.int64)) for name, indices in by_name.items()]


def _add_sampled(
    targets: list[tuple[torch.Tensor, torch.Tensor]],
    grads: list[torch.Tensor],
    *,
    value: float,
    sample_rate: float,
    generator: torch.Generator,
) -> None:
    """Add ``value`` at each canary coordinate whose Poisson coin (rate ``sample_rate``) comes up."""
    for (_, indices), grad in zip(targets, grads, strict=True):
        sampled = torch.rand(len(indices), generator=generator) < sample_rate  # (k,)
        chosen = indices[sampled].to(grad.device)
        values = torch.full((len(chosen),), value, dtype=grad.dtype, device=grad.device)
        grad.view(-1).index_add_(0, chosen, values)


def attach_dirac_canaries(
    optimizer: torch.optim.Optimizer,
    module: nn.Module,
    held: Sequence[tuple[str, int]],
    *,
    norm: float,
    sample_rate: float,
    batch_size: int,
    seed: int,
    private: bool,
) -> None:
    """Make every step of ``optimizer`` include the client's sampled canaries (module docstring).

    Args:
        optimizer: Opacus's ``DPOptimizer`` when ``private``, else a plain optimiser.
        module: the client's model before Opacus wraps it; ``held`` names its parameters.
        held: ``(state_dict name, flat index)`` of each included canary of this client.
        norm: the canary gradient's value (the clipping norm under DP-SGD).
        sample_rate: q, the chance a canary is in a step's batch.
        batch_size: the expected batch size ``B`` (non-private steps add ``norm / B``).
        seed: seeds the canaries' coins (one generator per client and round).
        private: whether ``optimizer`` is Opacus's.

    The hook is removed with the optimiser: under DP-SGD by
    :meth:`fedsim.privacy.PrivateTraining.close`.
    """
    targets = _canary_tensors(module, held)
    if not targets:
        return
    generator = torch.Generator()
    generator.manual_seed(seed)
    if private:
        add_noise = optimizer.add_noise

        def add_canaries_then_noise() -> None:
            grads = [p.summed_grad for p, _ in targets]
            _add_sampled(targets, grads, value=norm, sample_rate=sample_rate, generator=generator)
            add_noise()

        optimizer.add_noise = add_canaries_then_noise  # on the instance: PrivateTraining.close removes it
        return

    def add_canaries(opt, args, kwargs) -> None:
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p, _ in targets]
        for (p, _), grad in zip(targets, grads, strict=True):
            p.grad = grad
        _add_sampled(targets, grads, value=norm / batch_size, sample_rate=sample_rate, generator=generator)

    optimizer.register_step_pre_hook(add_canaries)


def apply_test_noise_divisor(optimizer: torch.optim.Optimizer) -> None:
    """Test-only: divide the noise Opacus adds by :data:`TEST_NOISE_DIVISOR_ENV`'s value, if set.

    The ledger still records the planned σ, so the run claims an ε its noise
    does not pay for: the canary audit must flag it.

    Raises:
        ValueError: if the variable is set to a value that is not a number > 0.
    """
    value = os.environ.get(TEST_NOISE_DIVISOR_ENV)
    if not value:
        return
    divisor = float(value)
    if not divisor > 0:
        raise ValueError(f"{TEST_NOISE_DIVISOR_ENV} must be a number > 0, got {value!r}")
    optimizer.noise_multiplier = optimizer.noise_multiplier / divisor
