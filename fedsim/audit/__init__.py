"""Membership-inference audit of a trained model: attacks, shadow models and the empirical ε.

Members are the clients' training examples, non-members held-out test
examples. Each attack is one module of :mod:`fedsim.audit.attacks` (loss
threshold, LiRA) behind :mod:`fedsim.audit.registry`; :mod:`fedsim.audit.scores`
holds the per-example scores, :mod:`fedsim.audit.shadow` trains LiRA's shadow
models, and :mod:`fedsim.audit.metrics` summarises an attack as AUC, TPR at
low FPR and an empirical ε lower bound (an estimate to compare runs, not a
certified bound; see that module's docstring). :func:`run_audit` runs them all.

The one-run canary audit (Steinke, Nasr and Jagielski 2023,
https://arxiv.org/abs/2305.08846) is beside them: :mod:`fedsim.audit.one_run`
(the ε lower bound from guesses), :mod:`fedsim.audit.canaries` (white-box Dirac
gradient canaries and what the server saw of them),
:mod:`fedsim.audit.input_canaries` (black-box mislabelled examples) and
:mod:`fedsim.audit.canary_audit` (ε̂ per threat model beside the accountant's ε).

The names below are imported on first use, so that reading the attacks' names
(the reports, the sweep's column names) does not load torch, scipy and sklearn.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Attack": "fedsim.audit.attacks.base",
    "AttackContext": "fedsim.audit.attacks.base",
    "run_audit": "fedsim.audit.audit",
    "AttackMetrics": "fedsim.audit.metrics",
    "attack_metrics": "fedsim.audit.metrics",
    "clopper_pearson_upper": "fedsim.audit.metrics",
    "epsilon_lower_bound": "fedsim.audit.metrics",
    "tpr_at_fpr": "fedsim.audit.metrics",
    "ATTACKS": "fedsim.audit.registry",
    "available_attacks": "fedsim.audit.registry",
    "create_attacks": "fedsim.audit.registry",
    "get_attack": "fedsim.audit.registry",
    "example_losses": "fedsim.audit.scores",
    "finite_scores": "fedsim.audit.scores",
    "lira_scores": "fedsim.audit.scores",
    "logit_confidence": "fedsim.audit.scores",
    "loss_threshold_scores": "fedsim.audit.scores",
    "ShadowFederation": "fedsim.audit.shadow",
    "balanced_in_mask": "fedsim.audit.shadow",
    "concatenate_datasets": "fedsim.audit.shadow",
    "shadow_confidences": "fedsim.audit.shadow",
    "AuditSpec": "fedsim.audit.spec",
}
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


def __getattr__(name: str) -> Any:
    """Import the public name ``name`` from its module on first use (PEP 562).

    Raises:
        AttributeError: if ``name`` is not a public name of the package.
    """
    if name not in _EXPORTS:
        raise AttributeError(f"module 'fedsim.audit' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    """The package's names, the public ones included before their first use."""
    return sorted([*globals(), *_EXPORTS])
