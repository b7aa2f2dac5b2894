"""The interface of a membership-inference attack, and what it is given.

An attack turns the audited model and the drawn members and non-members
(:class:`AttackContext`) into one score per example, higher = more likely a
member; :func:`fedsim.audit.run_audit` turns the scores into metrics
(:func:`fedsim.audit.attack_metrics`). Adding an attack is one module in this
folder plus its line in :data:`fedsim.audit.registry.ATTACKS`. An attack module
imports torch and its helpers inside :meth:`Attack.scores`, so that the reports,
which read only the attacks' names and labels, do not load torch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from fedsim.audit.spec import AuditSpec

if TYPE_CHECKING:  # torch is imported when an attack runs, not when a report reads its name
    import torch
    from torch import nn

    from fedsim.audit.shadow import ShadowFederation
    from fedsim.client import TrainSpec
    from fedsim.data import ArrayDataset


@dataclass(frozen=True)
class AttackContext:
    """What an attack may use.

    Attributes:
        model: the audited model (logits ``(B, K)``).
        members: the ``m`` drawn members (training examples of the audited model).
        nonmembers: the ``m`` drawn non-members (held-out examples).
        member_pool: every training example of the clients that trained; ``members`` were drawn from it.
        member_idx: the members' indices into ``member_pool``, sorted, shape ``(m,)``.
        spec: the audit's settings.
        device: where the models run.
        model_factory: ``seed -> new model`` of the audited architecture, or None.
        train: local training settings for shadow models, or None.
        federation: how shadow models are trained by FedAvg, or None.
    """

    model: nn.Module
    members: ArrayDataset
    nonmembers: ArrayDataset
    member_pool: ArrayDataset
    member_idx: np.ndarray
    spec: AuditSpec
    device: torch.device
    model_factory: Callable[[int], nn.Module] | None = None
    train: TrainSpec | None = None
    federation: ShadowFederation | None = None


Scores = tuple[np.ndarray, np.ndarray]
"""``(scores_in, scores_out)``: float64 scores of the members ``(m,)`` and of the non-members ``(m,)``."""


class Attack(ABC):
    """A membership-inference attack.

    Attributes:
        name: its key in ``summary.json`` (``attack``) and in ``runs.csv`` (``auc_<name>``).
        label: a short name for tables and plot legends.
        description: one line for the run report: the attack, its source, its idea.
    """

    name: ClassVar[str]
    label: ClassVar[str]
    description: ClassVar[str]

    def applies(self, spec: AuditSpec) -> bool:
        """Whether the audit ``spec`` asks for this attack (default: always).

        Args:
            spec: the audit's settings.
        """
        return True

    @abstractmethod
    def scores(self, context: AttackContext) -> Scores | str:
        """Score every member and non-member of ``context``.

        Args:
            context: the audited model and examples.

        Returns:
            ``(scores_in, scores_out)``: finite float64 scores of shapes ``(m,)``
            and ``(m,)``, higher = more likely a member (±inf as ±1e300, NaN as
            -1e300: :func:`fedsim.audit.scores.finite_scores`); or a note saying
            why the attack was not run.

        Raises:
            ValueError: if ``context`` lacks what the attack needs.
        """
