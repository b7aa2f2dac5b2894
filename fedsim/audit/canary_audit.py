"""The canary audit of a finished run: each threat model's scores, guesses and ε̂ beside the accountant's ε.

Two kinds of canaries give scores, one per canary, higher = more likely included:

* Dirac gradient canaries (white box): the server's
  :class:`fedsim.audit.canaries.CanaryObserver` holds what the updates did at
  their coordinates; :func:`dirac_scores` scores them on the final model and on
  every round's updates;
* mislabelled input canaries (black box): :func:`input_scores` scores them by
  the final global model's loss (:mod:`fedsim.audit.input_canaries`).

:func:`canary_results` turns each threat model's scores and coins into ε̂
(:func:`fedsim.audit.one_run.audit_scores`); the bounds of a run hold together
with probability ≥ the audit's confidence (Bonferroni over its threat models).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fedsim.audit.canaries import CanaryObserver
from fedsim.audit.input_canaries import InputCanaries
from fedsim.audit.one_run import audit_scores
from fedsim.results.summary import CanaryResult

if TYPE_CHECKING:  # torch is imported when the black-box canaries are scored
    import torch
    from torch import nn

    from fedsim.data import ArrayDataset

THREAT_MODELS = {"final": "white-box, final model", "all-rounds": "white-box, every round's updates"}
"""Dirac score name (:meth:`CanaryObserver.scores`) -> the threat model, as the reports name it."""

BLACK_BOX = "black-box, final model's loss"
"""The input canaries' threat model, as the reports name it."""


@dataclass(frozen=True)
class CanaryScores:
    """One threat model's scores of one kind of canary.

    Attributes:
        attack: the canaries' kind: ``"dirac"`` or ``"mislabelled"``.
        threat_model: what the auditor scored, as the reports name it.
        scores: one score per canary, float64 ``(m,)``, higher = more likely included.
        included: the coins, bool ``(m,)``.
    """

    attack: str
    threat_model: str
    scores: np.ndarray
    included: np.ndarray


def dirac_scores(observer: CanaryObserver) -> list[CanaryScores]:
    """The Dirac canaries' scores in each white-box threat model (:data:`THREAT_MODELS`)."""
    scores, included = observer.scores(), observer.canaries.included_mask()
    return [CanaryScores("dirac", label, scores[name], included) for name, label in THREAT_MODELS.items()]


def input_scores(
    model: nn.Module, canaries: InputCanaries, examples: ArrayDataset, *, device: torch.device
) -> CanaryScores:
    """The mislabelled canaries' scores: minus the final model's loss on each (with its wrong label).

    Args:
        model: the final global model.
        canaries: the plan.
        examples: :meth:`InputCanaries.examples` of the full test set.
        device: where the model runs.
    """
    from fedsim.audit.scores import example_losses, finite_scores

    scores = finite_scores(-example_losses(model, examples, device=device))
    return CanaryScores("mislabelled", BLACK_BOX, scores, canaries.included_mask())


def canary_results(
    scored: list[CanaryScores], *, epsilon: float | None, unit: str, delta: float, confidence: float
) -> tuple[CanaryResult, ...]:
    """ε̂ of every threat model, each beside the accountant's ε.

    Args:
        scored: each threat model's scores and coins.
        epsilon: the accountant's ε for ``unit`` at ``delta`` over the whole run
            (the largest over clients), or None without DP.
        unit: ``"example"`` or ``"client"``: what ``epsilon`` protects.
        delta: δ of the guarantee under test (the run's δ).
        confidence: joint confidence of the bounds, in (0, 1).

    Returns:
        One :class:`fedsim.results.CanaryResult` per entry of ``scored``, each at
        confidence ``1 - (1 - confidence) / len(scored)``.
    """
    each = 1 - (1 - confidence) / max(len(scored), 1)
    results = []
    for s in scored:
        bound = audit_scores(s.scores, s.included, delta=delta, confidence=each)
        results.append(
            CanaryResult(
                attack=s.attack,
                threat_model=s.threat_model,
                canaries=len(s.scores),
                included=int(s.included.sum()),
                guesses=bound.guesses,
                correct=bound.correct,
                epsilon_lower_bound=bound.epsilon,
                epsilon=epsilon,
                unit=unit,
                delta=delta,
                confidence=each,
            )
        )
    return tuple(results)
