"""The canary audit of a finished run: each threat model's scores, guesses and ε̂ beside the accountant's ε.

The server's :class:`fedsim.audit.canaries.CanaryObserver` holds, per round,
what the updates did at the canaries' coordinates. Each threat model
(:meth:`~fedsim.audit.canaries.CanaryObserver.scores`: the final model, every
round's updates) turns that into one score per canary;
:func:`fedsim.audit.one_run.audit_scores` turns the scores and the coins into
ε̂. The threat models' bounds hold together with probability ≥ the audit's
confidence (Bonferroni: each at ``1 - (1 - confidence) / 2``).
"""

from __future__ import annotations

from fedsim.audit.canaries import CanaryObserver
from fedsim.audit.one_run import audit_scores
from fedsim.results.summary import CanaryResult

THREAT_MODELS = {"final": "white-box, final model", "all-rounds": "white-box, every round's updates"}
"""Score name (:meth:`CanaryObserver.scores`) -> the threat model, as the reports name it."""


def canary_results(
    observer: CanaryObserver, *, epsilon: float | None, unit: str, delta: float, confidence: float
) -> tuple[CanaryResult, ...]:
    """ε̂ of every threat model, each beside the accountant's ε.

    Args:
        observer: what the server saw at the canaries' coordinates.
        epsilon: the accountant's ε for ``unit`` at ``delta`` over the whole run
            (the largest over clients), or None without DP.
        unit: ``"example"`` or ``"client"``: what ``epsilon`` protects.
        delta: δ of the guarantee under test (the run's δ).
        confidence: joint confidence of the bounds, in (0, 1).

    Returns:
        One :class:`fedsim.results.CanaryResult` per entry of :data:`THREAT_MODELS`.
    """
    canaries = observer.canaries
    each = 1 - (1 - confidence) / len(THREAT_MODELS)
    scores = observer.scores()
    results = []
    for name, threat_model in THREAT_MODELS.items():
        bound = audit_scores(scores[name], canaries.included_mask(), delta=delta, confidence=each)
        results.append(
            CanaryResult(
                attack="dirac",
                threat_model=threat_model,
                canaries=canaries.count,
                included=int(sum(canaries.included)),
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
