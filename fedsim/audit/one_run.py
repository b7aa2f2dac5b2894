"""The ε lower bound of a one-run audit: m canaries, each included by a fair coin, and the auditor's guesses.

Steinke, Nasr and Jagielski 2023, "Privacy Auditing with One (1) Training
Run", https://arxiv.org/abs/2305.08846. Before training, each of ``m``
canaries is included independently with probability ½. After training the
auditor scores every canary, guesses "in" for the ``k`` highest scores and
"out" for the ``k`` lowest and abstains on the rest, and counts its correct
guesses ``v`` among its ``r = 2k`` guesses.

If training is (ε, δ)-DP with respect to each canary, then (the paper's
Theorem 3.1 for δ = 0, and its Theorem 5.2 with the δ term)
``P[V ≥ v] ≤ β + 2·m·δ·α``, where ``β = P[Binomial(r, p) ≥ v]``,
``p = e^ε / (1 + e^ε)`` (the accuracy of ε-DP randomised response) and
``α = max_{1 ≤ i ≤ v} P[v - i ≤ Binomial(r, p) < v] / i``. This p-value is
increasing in ε; the ε lower bound at confidence ``1 - p_max`` is the largest ε
whose p-value is below ``p_max``: any smaller ε is rejected.

**The number of guesses is not chosen after seeing the result.** The auditor
tries a fixed list of guess counts (:data:`GUESS_FRACTIONS` of ``m``) and reports
the best bound, each tried at level ``p_max / len(list)`` (Bonferroni), so the
reported bound holds with the stated confidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.stats import binom

GUESS_FRACTIONS = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
"""The guess counts an audit tries, as fractions of the canaries (half "in", half "out")."""

_EPSILON_CEILING = 100.0
"""Bisection's upper end: a p-value this far out is 0 in float64 for any guesses a run can make."""


@dataclass(frozen=True)
class OneRunBound:
    """The best bound over the guess counts tried, and the guesses that gave it.

    Attributes:
        epsilon: the ε lower bound in nats (≥ 0), at the stated confidence.
        guesses: ``r``, the guesses made (half "in", half "out").
        correct: ``v``, the correct ones.
    """

    epsilon: float
    guesses: int
    correct: int


def p_value(canaries: int, guesses: int, correct: int, *, epsilon: float, delta: float) -> float:
    """Probability of ``correct`` or more right guesses if training were (ε, δ)-DP per canary.

    Steinke et al. 2023, https://arxiv.org/abs/2305.08846, Theorem 5.2 (the
    module docstring gives the formula).

    Args:
        canaries: ``m``, canaries each included with probability ½ (≥ 1).
        guesses: ``r``, guesses made, in ``[0, m]``.
        correct: ``v``, correct guesses, in ``[0, r]``.
        epsilon: ε ≥ 0 of the null hypothesis.
        delta: δ in ``[0, 1]`` of the null hypothesis.

    Returns:
        The p-value in ``[0, 1]``.

    Raises:
        ValueError: if the counts are inconsistent or ε, δ are out of range.

    Example:
        >>> round(p_value(1000, 1000, 1000, epsilon=5.8, delta=0.0), 3)
        0.049
    """
    if not 0 <= correct <= guesses <= canaries:
        raise ValueError(f"need 0 ≤ correct ≤ guesses ≤ canaries, got {correct}, {guesses}, {canaries}")
    if epsilon < 0 or not 0 <= delta <= 1:
        raise ValueError(f"need ε ≥ 0 and δ in [0, 1], got {epsilon}, {delta}")
    p = 1 / (1 + np.exp(-epsilon))  # e^ε / (1 + e^ε)
    beta = binom.sf(correct - 1, guesses, p)  # P[Binomial(r, p) ≥ v]
    if correct == 0 or delta == 0:
        return float(min(beta, 1.0))
    below = np.cumsum(binom.pmf(correct - np.arange(1, correct + 1), guesses, p))  # (v,): P[v-i ≤ B < v]
    alpha = float(np.max(below / np.arange(1, correct + 1)))
    return float(min(beta + 2 * canaries * delta * alpha, 1.0))


def epsilon_lower_bound(canaries: int, guesses: int, correct: int, *, delta: float, p_max: float) -> float:
    """The largest ε that ``correct`` right guesses out of ``guesses`` reject at level ``p_max``.

    Args:
        canaries: ``m`` (≥ 1).
        guesses: ``r`` in ``[0, m]``.
        correct: ``v`` in ``[0, r]``.
        delta: δ of the guarantee under test, in ``[0, 1]``.
        p_max: 1 − confidence, in ``(0, 1)``.

    Returns:
        ε̂ ≥ 0 in nats, to 1e-6 (0 when even ε = 0 is not rejected).

    Raises:
        ValueError: as :func:`p_value`, or for ``p_max`` outside ``(0, 1)``.

    Example:
        >>> round(epsilon_lower_bound(1000, 1000, 1000, delta=0.0, p_max=0.05), 2)
        5.81
    """
    if not 0 < p_max < 1:
        raise ValueError(f"p_max must be in (0, 1), got {p_max}")

    def excess(epsilon: float) -> float:
        return p_value(canaries, guesses, correct, epsilon=epsilon, delta=delta) - p_max

    if excess(0.0) >= 0:
        return 0.0
    if excess(_EPSILON_CEILING) < 0:
        return _EPSILON_CEILING
    return float(brentq(excess, 0.0, _EPSILON_CEILING, xtol=1e-6))


def guess_counts(canaries: int) -> tuple[int, ...]:
    """The even guess counts ``r`` an audit of ``canaries`` canaries tries (:data:`GUESS_FRACTIONS`).

    Example:
        >>> guess_counts(1000)
        (20, 50, 100, 200, 500, 1000)
    """
    counts = {max(2, 2 * int(round(f * canaries / 2))) for f in GUESS_FRACTIONS}
    return tuple(sorted(r for r in counts if r <= canaries))


def audit_scores(scores: np.ndarray, included: np.ndarray, *, delta: float, confidence: float) -> OneRunBound:
    """Guess from canary scores and bound ε: the best of :func:`guess_counts`, Bonferroni-corrected.

    For each guess count ``r``, the ``r/2`` highest scores are guessed "in" and
    the ``r/2`` lowest "out" (ties broken by the canary's index, which the
    coins did not see); a guess is correct when it matches ``included``.

    Args:
        scores: one score per canary, shape ``(m,)``, higher = more likely included; finite.
        included: the coins, bool, shape ``(m,)``.
        delta: δ of the guarantee under test.
        confidence: probability in ``(0, 1)`` with which the reported bound holds.

    Returns:
        The largest bound over the guess counts, each at level ``(1 - confidence) / counts``.

    Raises:
        ValueError: if the shapes differ, a score is not finite, or fewer than 2 canaries.
    """
    scores, included = np.asarray(scores, dtype=np.float64), np.asarray(included, dtype=bool)
    if scores.shape != included.shape or scores.ndim != 1 or len(scores) < 2:
        raise ValueError(
            f"need scores and coins of one shape (m,), m ≥ 2; got {scores.shape}, {included.shape}"
        )
    if not np.isfinite(scores).all():
        raise ValueError("canary scores must be finite")
    order = np.argsort(-scores, kind="stable")  # (m,) highest first
    counts = guess_counts(len(scores))
    p_max = (1 - confidence) / len(counts)
    best = OneRunBound(0.0, 0, 0)
    for r in counts:
        top, bottom = order[: r // 2], order[len(order) - r // 2 :]
        correct = int(included[top].sum() + (~included[bottom]).sum())
        epsilon = epsilon_lower_bound(len(scores), r, correct, delta=delta, p_max=p_max)
        if epsilon > best.epsilon:
            best = OneRunBound(epsilon, r, correct)
    return best
