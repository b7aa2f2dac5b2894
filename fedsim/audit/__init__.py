"""Membership-inference audit of a trained model: attacks, shadow models and the empirical ε.

Members are the clients' training examples, non-members held-out test
examples. Each attack is one module of :mod:`fedsim.audit.attacks` (loss
threshold, LiRA) behind :mod:`fedsim.audit.registry`; :mod:`fedsim.audit.scores`
holds the per-example scores, :mod:`fedsim.audit.shadow` trains LiRA's shadow
models, and :mod:`fedsim.audit.metrics` summarises an attack as AUC, TPR at
low FPR and an empirical ε lower bound (an estimate to compare runs, not a
certified bound; see that module's docstring). :func:`run_audit` runs them all.
"""

from fedsim.audit.attacks import Attack, AttackContext
from fedsim.audit.audit import run_audit
from fedsim.audit.metrics import (
    AttackMetrics,
    attack_metrics,
    clopper_pearson_upper,
    epsilon_lower_bound,
    tpr_at_fpr,
)
from fedsim.audit.registry import ATTACKS, available_attacks, create_attacks, get_attack
from fedsim.audit.scores import (
    example_losses,
    finite_scores,
    lira_scores,
    logit_confidence,
    loss_threshold_scores,
)
from fedsim.audit.shadow import ShadowFederation, balanced_in_mask, concatenate_datasets, shadow_confidences
from fedsim.audit.spec import AuditSpec

__all__ = [
    "ATTACKS",
    "Attack",
    "AttackContext",
    "AttackMetrics",
    "AuditSpec",
    "ShadowFederation",
    "attack_metrics",
    "available_attacks",
    "balanced_in_mask",
    "clopper_pearson_upper",
    "concatenate_datasets",
    "create_attacks",
    "epsilon_lower_bound",
    "example_losses",
    "finite_scores",
    "get_attack",
    "lira_scores",
    "logit_confidence",
    "loss_threshold_scores",
    "run_audit",
    "shadow_confidences",
    "tpr_at_fpr",
]
