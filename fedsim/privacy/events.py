"""The message a client sends to the privacy ledger after training."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PrivacyEvent:
    """One round of DP-SGD on one client: the mechanism's parameters, not its ε.

    Guarantee: sample-level (ε, δ)-DP for the client's local data set under the
    add/remove-one-example neighbouring relation, with each step's batch drawn by
    Poisson sampling (every example independently with probability
    ``sample_rate``) and each per-example gradient clipped to ``max_grad_norm``
    before Gaussian noise of std ``noise_multiplier * max_grad_norm`` is added
    (Abadi et al. 2016, https://arxiv.org/abs/1607.00133). This is the setting
    Opacus's RDP and PRV accountants assume. Epsilon is composed by
    :class:`fedsim.privacy.PrivacyLedger`, never by the client.

    Attributes:
        noise_multiplier: σ, noise std divided by the clipping norm (≥ 0).
        sample_rate: Poisson sampling probability q in ``(0, 1]``.
        steps: noisy optimiser steps taken this round (≥ 0).
    """

    noise_multiplier: float
    sample_rate: float
    steps: int

    def __post_init__(self) -> None:
        if self.noise_multiplier < 0:
            raise ValueError(f"noise_multiplier must be ≥ 0, got {self.noise_multiplier}")
        if not 0 < self.sample_rate <= 1:
            raise ValueError(f"sample_rate must be in (0, 1], got {self.sample_rate}")
        if self.steps < 0:
            raise ValueError(f"steps must be ≥ 0, got {self.steps}")

    def as_history_entry(self) -> tuple[float, float, int]:
        """The ``(noise_multiplier, sample_rate, num_steps)`` tuple Opacus accountants keep."""
        return (float(self.noise_multiplier), float(self.sample_rate), int(self.steps))
