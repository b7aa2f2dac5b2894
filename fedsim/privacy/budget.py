"""The privacy settings of a run."""

from __future__ import annotations

import math
from dataclasses import dataclass

PRIVACY_MODES = ("none", "sample")
"""``none``: plain federated learning. ``sample``: sample-level DP-SGD on every client."""

GRAD_SAMPLE_MODES = ("hooks", "functorch", "ghost")
"""Opacus per-sample gradient engines (``make_private(grad_sample_mode=...)``)."""


def available_accountants() -> list[str]:
    """Opacus accountants fedsim composes epsilon with: RDP (default) and PRV."""
    return ["prv", "rdp"]


@dataclass(frozen=True)
class PrivacyBudget:
    """Sample-level DP settings, following pfl's "give two of ε, δ, σ" rule.

    Either ``target_epsilon`` is given and the noise multiplier is calibrated per
    client (:func:`fedsim.privacy.resolve_noise_multiplier`), or
    ``noise_multiplier`` is given and epsilon is only reported.
    ``target_delta`` is always needed to state an epsilon.

    Args:
        mode: one of :data:`PRIVACY_MODES`.
        target_epsilon: each client's ε budget over the whole run (> 0), or None.
        target_delta: δ of every (ε, δ) statement, in ``(0, 1)``.
        noise_multiplier: std of the Gaussian noise divided by ``max_grad_norm``
            (≥ 0), or None to calibrate it from ``target_epsilon``.
        max_grad_norm: per-sample gradient clipping bound C (L2 norm, > 0).
        accountant: ``rdp`` or ``prv`` (Opacus accountants).
        grad_sample_mode: Opacus per-sample gradient engine, one of
            :data:`GRAD_SAMPLE_MODES`; ``ghost`` (ghost clipping, Li et al. 2021,
            https://arxiv.org/abs/2110.05679) is the fastest for the CNN.

    Raises:
        ValueError: on an unknown mode/accountant or a value out of range, or when
            both or neither of ``target_epsilon`` and ``noise_multiplier`` are set
            under ``mode="sample"``.
    """

    mode: str
    target_delta: float
    max_grad_norm: float
    target_epsilon: float | None = None
    noise_multiplier: float | None = None
    accountant: str = "rdp"
    grad_sample_mode: str = "ghost"

    def __post_init__(self) -> None:
        if self.mode not in PRIVACY_MODES:
            raise ValueError(f"mode must be one of {PRIVACY_MODES}, got {self.mode!r}")
        if self.accountant not in available_accountants():
            raise ValueError(f"accountant must be one of {available_accountants()}, got {self.accountant!r}")
        if self.grad_sample_mode not in GRAD_SAMPLE_MODES:
            raise ValueError(
                f"grad_sample_mode must be one of {GRAD_SAMPLE_MODES}, got {self.grad_sample_mode!r}"
            )
        if not 0 < self.target_delta < 1:
            raise ValueError(f"target_delta must be in (0, 1), got {self.target_delta}")
        if not (self.max_grad_norm > 0 and math.isfinite(self.max_grad_norm)):
            raise ValueError(f"max_grad_norm must be a finite number > 0, got {self.max_grad_norm}")
        if self.target_epsilon is not None and not (
            self.target_epsilon > 0 and math.isfinite(self.target_epsilon)
        ):
            raise ValueError(f"target_epsilon must be a finite number > 0, got {self.target_epsilon}")
        if self.noise_multiplier is not None and not (
            self.noise_multiplier >= 0 and math.isfinite(self.noise_multiplier)
        ):
            raise ValueError(f"noise_multiplier must be ≥ 0, got {self.noise_multiplier}")
        if self.is_private and (self.target_epsilon is None) == (self.noise_multiplier is None):
            raise ValueError("give exactly one of target_epsilon and noise_multiplier")

    @property
    def is_private(self) -> bool:
        """Whether clients train with DP-SGD."""
        return self.mode == "sample"
