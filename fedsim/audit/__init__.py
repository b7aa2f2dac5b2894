"""Membership-inference audit of a trained model: attack scores, shadow models and the empirical ε.

Members are the clients' training examples, non-members held-out test
examples. :mod:`fedsim.audit.scores` turns a model into per-example scores
(loss threshold, LiRA), :mod:`fedsim.audit.shadow` trains LiRA's shadow
models, and :mod:`fedsim.audit.metrics` summarises an attack as AUC, TPR at low
FPR and an empirical ε lower bound (an estimate to compare runs, not a
certified bound; see that module's docstring).
"""

from fedsim.audit.audit import AuditSpec, run_audit
from fedsim.audit.metrics import (
    AttackMetrics,
    attack_metrics,
    clopper_pearson_upper,
    epsilon_lower_bound,
    tpr_at_fpr,
)
from fedsim.audit.scores import example_losses, lira_scores, logit_confidence, loss_threshold_scores
from fedsim.audit.shadow import ShadowFederation, balanced_in_mask, concatenate_datasets, shadow_confidences

__all__ = [
    "AttackMetrics",
    "AuditSpec",
    "ShadowFederation",
    "attack_metrics",
    "balanced_in_mask",
    "clopper_pearson_upper",
    "concatenate_datasets",
    "epsilon_lower_bound",
    "example_losses",
    "lira_scores",
    "logit_confidence",
    "loss_threshold_scores",
    "run_audit",
    "shadow_confidences",
    "tpr_at_fpr",
]
