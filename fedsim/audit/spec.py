"""The audit's settings: the scenario's ``[audit]`` table as a frozen spec."""

from __future__ import annotations

from dataclasses import dataclass

NO_DP_CANARY_NORM = 10.0
"""A Dirac canary's value when no DP-SGD clips it. Nothing bounds an example's gradient then; 10
is above every per-example gradient norm of the seed's CNN at initialisation (digits: median 2.8,
largest 3.4; Fashion-MNIST: median 4.7, largest 7.0, over 512 training examples each), so the
canary is as strong as a strong real example, and weaker than a deliberately crafted one."""


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
        canaries: Dirac gradient canaries planted for the one-run audit
            (:mod:`fedsim.audit.canaries`; 0: none, else ≥ 2).
        canary_norm: each canary gradient's value at its coordinate, > 0; None: the
            clipping norm under DP-SGD, else :data:`NO_DP_CANARY_NORM`.
        input_canaries: mislabelled test examples planted for the black-box one-run
            audit (:mod:`fedsim.audit.input_canaries`; 0: none, else ≥ 2).
        seed: seed of the draws, the bound's split and the shadow models.

    Raises:
        ValueError: if a setting is out of range.
    """

    enabled: bool
    max_examples: int
    confidence: float
    shadow_models: int
    shadow_epochs: int | None
    canaries: int
    canary_norm: float | None
    input_canaries: int
    seed: int

    def __post_init__(self) -> None:
        if self.max_examples < 20:
            raise ValueError(f"max_examples must be ≥ 20, got {self.max_examples}")
        if not 0.5 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0.5, 1), got {self.confidence}")
        if self.shadow_models and (self.shadow_models < 4 or self.shadow_models % 2):
            raise ValueError(f"shadow_models must be 0 or even and ≥ 4, got {self.shadow_models}")
        if self.canary_norm is not None and not self.canary_norm > 0:
            raise ValueError(f"canary_norm must be > 0, got {self.canary_norm}")
        if self.canaries < 0 or self.canaries == 1:
            raise ValueError(f"canaries must be 0 or ≥ 2, got {self.canaries}")
        if self.input_canaries < 0 or self.input_canaries == 1:
            raise ValueError(f"input_canaries must be 0 or ≥ 2, got {self.input_canaries}")
