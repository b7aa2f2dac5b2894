"""Differential privacy: budgets, accountants, calibration, Opacus DP-SGD, ledgers and budget enforcement.

This is the only package that imports Opacus and dp_accounting.
"""

from fedsim.privacy.accountants import Accountant, available_accountants, create_accountant
from fedsim.privacy.budget import (
    BudgetTier,
    PrivacyBudget,
    UserLevelDP,
    assign_tiers,
)
from fedsim.privacy.calibrate import (
    calibrate_noise,
    calibration_rounds,
    compute_epsilon,
    plan_client_round,
    poisson_sample_rate,
    steps_per_epoch,
)
from fedsim.privacy.engine import (
    DPSGDSpec,
    PrivateTraining,
    check_secure_mode,
    make_private,
    make_trainable,
    plain_state_dict,
)
from fedsim.privacy.events import PrivacyEvent
from fedsim.privacy.guard import BudgetGuard
from fedsim.privacy.ledger import PrivacyLedger, ReleaseLedger
from fedsim.privacy.stopping import StoppingRule
from fedsim.privacy.user_level import (
    client_sample_rate,
    cohort_size,
    release_noise_multiplier,
    resolve_user_noise_multiplier,
)

__all__ = [
    "Accountant",
    "BudgetGuard",
    "BudgetTier",
    "DPSGDSpec",
    "PrivacyBudget",
    "PrivacyEvent",
    "PrivacyLedger",
    "PrivateTraining",
    "ReleaseLedger",
    "StoppingRule",
    "UserLevelDP",
    "assign_tiers",
    "available_accountants",
    "calibrate_noise",
    "calibration_rounds",
    "check_secure_mode",
    "client_sample_rate",
    "cohort_size",
    "compute_epsilon",
    "create_accountant",
    "make_private",
    "make_trainable",
    "plain_state_dict",
    "plan_client_round",
    "poisson_sample_rate",
    "release_noise_multiplier",
    "resolve_user_noise_multiplier",
    "steps_per_epoch",
]
