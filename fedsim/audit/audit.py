"""Auditing a trained global model: draw members and non-members, run every attack that applies, summarise.

Members are training examples of clients that trained at least once (their
data reached the model); non-members are test examples, which no client holds.
The two sets have the same size, drawn at random with the audit's seed. The
attacks are :data:`fedsim.audit.registry.ATTACKS`, in that order.

Pipeline of :func:`run_audit`:

1. draw ``m = min(max_examples, len(member_pool), len(test_set))`` members
   from ``member_pool`` and ``m`` non-members from ``test_set``;
2. each attack that applies (:func:`fedsim.audit.create_attacks`), in run
   order, scores them (the loss attack before LiRA trains its shadow models);
3. per attack: AUC, TPR at 1 % and 0.1 % FPR and the empirical ε lower bound
   at ``delta`` (:func:`fedsim.audit.attack_metrics`), each at confidence
   ``1 - (1 - confidence) / attacks`` over the attacks that apply, so that all
   hold together with probability ≥ ``confidence`` (Bonferroni).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from fedsim.audit.attacks import AttackContext
from fedsim.audit.metrics import attack_metrics
from fedsim.audit.registry import create_attacks
from fedsim.audit.shadow import ShadowFederation
from fedsim.audit.spec import AuditSpec
from fedsim.client import TrainSpec
from fedsim.data import ArrayDataset
from fedsim.results.records import AuditSummary

__all__ = ["AuditSpec", "run_audit"]


def run_audit(
    model: nn.Module,
    *,
    member_pool: ArrayDataset,
    test_set: ArrayDataset,
    spec: AuditSpec,
    delta: float,
    device: torch.device,
    model_factory: Callable[[int], nn.Module] | None = None,
    train: TrainSpec | None = None,
    federation: ShadowFederation | None = None,
) -> AuditSummary:
    """Attack ``model`` with every attack ``spec`` asks for, and summarise each.

    The steps (draw, score, Bonferroni-corrected metrics) are the module docstring's pipeline.

    Args:
        model: the trained global model (logits ``(B, K)``).
        member_pool: the training examples of every client that trained.
        test_set: the held-out examples.
        spec: the audit's settings.
        delta: δ of the ε lower bound (the run's δ).
        device: where the models run.
        model_factory: ``seed -> new model`` of the same architecture (needed for LiRA).
        train: the shadow models' local training (needed for LiRA).
        federation: how the shadow models are trained when ``spec.shadow_epochs``
            is None: FedAvg like the audited run (needed for LiRA then).

    Returns:
        The audit's summary; its ``notes`` say why an attack that applied was not
        run (LiRA when a shadow model diverged).

    Raises:
        ValueError: if fewer than 10 members or non-members are available, or
            an attack lacks what it needs (LiRA without ``model_factory`` and ``train``).
    """
    start = time.perf_counter()
    shadow = {"model_factory": model_factory, "train": train, "federation": federation}
    context = _draw(  # 1
        model, member_pool=member_pool, test_set=test_set, spec=spec, device=device, shadow=shadow
    )
    results, notes = _attack(context, spec=spec, delta=delta)  # 2, 3
    m = len(context.members)
    return AuditSummary(
        members=m,
        nonmembers=m,
        confidence=spec.confidence,  # joint, over every attack's bound
        delta=delta,
        shadow_models=spec.shadow_models,
        shadow_training=_shadow_training(spec, federation),
        notes=tuple(notes),
        audit_s=time.perf_counter() - start,
        attacks=tuple(results),
    )


def _draw(
    model: nn.Module,
    *,
    member_pool: ArrayDataset,
    test_set: ArrayDataset,
    spec: AuditSpec,
    device: torch.device,
    shadow: dict,
) -> AttackContext:
    """Draw ``m`` members and ``m`` non-members with the audit's seed: the attacks' context.

    Args:
        model: the audited model.
        member_pool: the training examples of every client that trained.
        test_set: the held-out examples.
        spec: the audit's settings (``max_examples``, ``seed``).
        device: where the models run.
        shadow: ``model_factory``, ``train`` and ``federation`` for shadow models.

    Raises:
        ValueError: if fewer than 10 members or non-members are available.
    """
    rng = np.random.default_rng(spec.seed)
    m = min(spec.max_examples, len(member_pool), len(test_set))
    if m < 10:
        raise ValueError(f"the audit needs at least 10 members and non-members, got {m}")
    member_idx = np.sort(rng.choice(len(member_pool), size=m, replace=False))  # (m,)
    nonmember_idx = np.sort(rng.choice(len(test_set), size=m, replace=False))  # (m,)
    return AttackContext(
        model=model,
        members=member_pool.subset(member_idx),
        nonmembers=test_set.subset(nonmember_idx),
        member_pool=member_pool,
        member_idx=member_idx,
        spec=spec,
        device=device,
        **shadow,
    )


def _attack(context: AttackContext, *, spec: AuditSpec, delta: float) -> tuple[list, list[str]]:
    """Run each attack that applies, in order: its metrics, or a note saying why it was not run."""
    attacks = create_attacks(spec)
    each = 1 - (1 - spec.confidence) / len(attacks)  # Bonferroni over the attacks that apply
    results, notes = [], []
    for attack in attacks:
        outcome = attack.scores(context)  # 2
        if isinstance(outcome, str):
            notes.append(outcome)
        else:  # 3
            results.append(
                attack_metrics(*outcome, attack=attack.name, delta=delta, confidence=each, seed=spec.seed)
            )
    return results, notes


def _shadow_training(spec: AuditSpec, federation: ShadowFederation | None) -> str | None:
    """How the shadow models were trained, in words (None without shadow models)."""
    if not spec.shadow_models:
        return None
    if spec.shadow_epochs:
        return f"centrally, {spec.shadow_epochs} epochs"
    f = federation
    return f"FedAvg over {f.num_clients} IID clients, {f.rounds} rounds of {f.clients_per_round} clients"
