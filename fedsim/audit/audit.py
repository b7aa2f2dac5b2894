"""Auditing a trained global model: draw members and non-members, attack, summarise.

Members are training examples of clients that trained at least once (their
data reached the model); non-members are test examples, which no client holds.
The two sets have the same size, drawn at random with the run's seed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from fedsim.audit.metrics import attack_metrics
from fedsim.audit.scores import example_losses, lira_scores, logit_confidence, loss_threshold_scores
from fedsim.audit.shadow import ShadowFederation, concatenate_datasets, shadow_confidences
from fedsim.client import TrainSpec
from fedsim.data import ArrayDataset


@dataclass(frozen=True)
class AuditSpec:
    """How to audit a run (the scenario's ``[audit]`` table).

    Args:
        enabled: run the audit after training.
        max_examples: members drawn, and as many non-members (at most; fewer if
            the trained clients or the test set hold fewer), ≥ 20.
        confidence: confidence level of the ε lower bound, in (0.5, 1).
        shadow_models: LiRA shadow models (0: the loss-threshold attack only;
            else even and ≥ 4).
        shadow_epochs: train each shadow model centrally for this many passes
            over its data; None: train it by FedAvg like the audited run
            (:class:`fedsim.audit.ShadowFederation`).
        seed: seed of the draws, the bound's split and the shadow models.
    """

    enabled: bool
    max_examples: int
    confidence: float
    shadow_models: int
    shadow_epochs: int | None
    seed: int

    def __post_init__(self) -> None:
        if self.max_examples < 20:
            raise ValueError(f"max_examples must be ≥ 20, got {self.max_examples}")
        if not 0.5 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0.5, 1), got {self.confidence}")
        if self.shadow_models and (self.shadow_models < 4 or self.shadow_models % 2):
            raise ValueError(f"shadow_models must be 0 or even and ≥ 4, got {self.shadow_models}")


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
) -> dict[str, Any]:
    """Attack ``model`` and summarise each attack (the ``audit`` entry of ``summary.json``).

    Pipeline:

    1. draw ``m = min(max_examples, len(member_pool), len(test_set))`` members
       from ``member_pool`` and ``m`` non-members from ``test_set``;
    2. the loss-threshold attack (Yeom et al. 2018, https://arxiv.org/abs/1709.01604);
    3. with shadow models, LiRA (Carlini et al. 2022, https://arxiv.org/abs/2112.03570):
       the shadow models train (without DP) on the member pool less the drawn
       members plus a balanced half of the ``2m`` audited examples each;
    4. per attack: AUC, TPR at 1 % and 0.1 % FPR and the empirical ε lower
       bound at ``delta`` (:func:`fedsim.audit.attack_metrics`), each at
       confidence ``1 - (1 - confidence) / attacks`` so that all hold together
       with probability ≥ ``confidence`` (Bonferroni).

    Args:
        model: the trained global model (logits ``(B, K)``).
        member_pool: the training examples of every client that trained.
        test_set: the held-out examples.
        spec: the audit's settings.
        delta: δ of the ε lower bound (the run's δ).
        device: where the models run.
        model_factory: ``seed -> new model`` of the same architecture (needed for LiRA).
        train: the shadow models' local training: batch size, learning rate, momentum,
            local epochs and steps (needed for LiRA).
        federation: how the shadow models are trained when ``spec.shadow_epochs``
            is None: FedAvg like the audited run (needed for LiRA then).

    Returns:
        ``{"members", "nonmembers", "confidence", "delta", "shadow_models",
        "shadow_training", "notes", "audit_s", "attacks": [AttackMetrics as dicts]}``;
        ``notes`` says why an attack was not run (LiRA when a shadow model diverged).

    Raises:
        ValueError: if fewer than 10 members or non-members are available, or
            LiRA is asked for without ``model_factory`` and ``train``.
    """
    start = time.perf_counter()
    rng = np.random.default_rng(spec.seed)
    m = min(spec.max_examples, len(member_pool), len(test_set))  # 1
    if m < 10:
        raise ValueError(f"the audit needs at least 10 members and non-members, got {m}")
    member_idx = np.sort(rng.choice(len(member_pool), size=m, replace=False))
    members = member_pool.subset(member_idx)
    nonmembers = test_set.subset(np.sort(rng.choice(len(test_set), size=m, replace=False)))
    attacks, notes = [], []
    # Bonferroni over the attacks: every attack's bound holds together with probability ≥ spec.confidence
    each = 1 - (1 - spec.confidence) / (2 if spec.shadow_models else 1)
    scores_in = _finite(loss_threshold_scores(example_losses(model, members, device=device)))  # 2
    scores_out = _finite(loss_threshold_scores(example_losses(model, nonmembers, device=device)))
    attacks.append(
        attack_metrics(scores_in, scores_out, attack="loss", delta=delta, confidence=each, seed=spec.seed)
    )
    if spec.shadow_models:  # 3
        if model_factory is None or train is None or (spec.shadow_epochs is None and federation is None):
            raise ValueError("LiRA needs model_factory, train, and shadow_epochs or federation")
        target = concatenate_datasets(members, nonmembers)
        rest = np.setdiff1d(np.arange(len(member_pool)), member_idx)
        conf, in_mask = shadow_confidences(
            model_factory=model_factory,
            target=target,
            always_in=member_pool.subset(rest) if len(rest) else None,
            num_shadow=spec.shadow_models,
            epochs=spec.shadow_epochs or 1,
            train=train,
            device=device,
            seed=spec.seed,
            federation=None if spec.shadow_epochs else federation,
        )
        diverged = int((~np.isfinite(conf).all(axis=1)).sum())
        if diverged:  # a diverged shadow model says nothing about membership: no LiRA rather than a wrong one
            notes.append(
                f"LiRA was not run: {diverged} of {spec.shadow_models} shadow models diverged (non-finite "
                "outputs; they train without DP's clipping, at the run's learning rate). Lower "
                "federation.learning-rate or train them centrally with audit.shadow-epochs."
            )
        else:
            scores = _finite(
                lira_scores(_finite(logit_confidence(model, target, device=device)), conf, in_mask)
            )
            attacks.append(
                attack_metrics(
                    scores[:m], scores[m:], attack="lira", delta=delta, confidence=each, seed=spec.seed
                )
            )
    return {  # 4
        "members": m,
        "nonmembers": m,
        "confidence": spec.confidence,  # joint, over every attack's bound
        "delta": delta,
        "shadow_models": spec.shadow_models,
        "shadow_training": _shadow_training(spec, federation),
        "notes": notes,
        "audit_s": time.perf_counter() - start,
        "attacks": [asdict(a) for a in attacks],
    }


def _shadow_training(spec: AuditSpec, federation: ShadowFederation | None) -> str | None:
    """How the shadow models were trained, in words (None without LiRA)."""
    if not spec.shadow_models:
        return None
    if spec.shadow_epochs:
        return f"centrally, {spec.shadow_epochs} epochs"
    f = federation
    return f"FedAvg over {f.num_clients} IID clients, {f.rounds} rounds of {f.clients_per_round} clients"


def _finite(scores: np.ndarray) -> np.ndarray:
    """Scores with ±inf as ±1e300 and NaN as -1e300 (finite, and midpoints of two stay finite).

    A model that is sure of a wrong label has an infinite loss (the surest
    "non-member"); a diverged model's NaN outputs say nothing, and rank lowest.

    Example:
        >>> _finite(np.array([1.0, np.inf, -np.inf, np.nan])).tolist()
        [1.0, 1e+300, -1e+300, -1e+300]
    """
    big = 1e300
    return np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-big, posinf=big, neginf=-big)
