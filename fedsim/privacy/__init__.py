"""Differential privacy: budgets, noise calibration, Opacus DP-SGD and the ledger.

This is the only package that imports Opacus.
"""

from fedsim.privacy.budget import PrivacyBudget, available_accountants
from fedsim.privacy.calibrate import (
    calibrate_noise,
    compute_epsilon,
    poisson_sample_rate,
    resolve_noise_multiplier,
    steps_per_epoch,
)
from fedsim.privacy.engine import PrivateTraining, make_private, make_trainable, plain_state_dict
from fedsim.privacy.events import PrivacyEvent
from fedsim.privacy.ledger import PrivacyLedger

__all__ = [
    "PrivacyBudget",
    "PrivacyEvent",
    "PrivacyLedger",
    "PrivateTraining",
    "available_accountants",
    "calibrate_noise",
    "compute_epsilon",
    "make_private",
    "make_trainable",
    "plain_state_dict",
    "poisson_sample_rate",
    "resolve_noise_multiplier",
    "steps_per_epoch",
]
