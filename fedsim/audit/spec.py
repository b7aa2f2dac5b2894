"""The audit's settings: the scenario's ``[audit]`` table as a frozen spec."""

from __future__ import annotations

from dataclasses import dataclass


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
    seed: int

    def __post_init__(self) -> None:
        if self.max_examples < 20:
            raise ValueError(f"max_examples must be ≥ 20, got {self.max_examples}")
        if not 0.5 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0.5, 1), got {self.confidence}")
        if self.shadow_models and (self.shadow_models < 4 or self.shadow_models % 2):
            raise ValueError(f"shadow_models must be 0 or even and ≥ 4, got {self.shadow_models}")
        if self.canaries < 0 or self.canaries == 1:
            raise ValueError(f"canaries must be 0 or ≥ 2, got {self.canaries}")
