"""How well a membership-inference attack works, and the ε it shows empirically.

Given attack scores of members (training examples of the audited model) and
non-members (held-out examples), higher = more likely a member, this module
reports the ROC AUC, the true-positive rate at a low false-positive rate (the
figure Carlini et al. 2022, https://arxiv.org/abs/2112.03570, Sec. 3, argue
matters) and an empirical lower bound on ε.

**The ε lower bound.** If training is (ε, δ)-DP for one example, every test
that decides "member" or "non-member" for that example has, by Kairouz et al.
2015, https://arxiv.org/abs/1311.0776, Thm 2.1,
``FPR + e^ε·FNR ≥ 1 - δ`` and ``FNR + e^ε·FPR ≥ 1 - δ``. Turned around, an
attack with rates FPR and FNR shows
``ε ≥ max(0, ln((1 - δ - FPR)/FNR), ln((1 - δ - FNR)/FPR))`` (a term whose
numerator is ≤ 0 counts as 0). This is the auditing recipe of Jagielski et al.
2020, "Auditing Differentially Private Machine Learning: How Private is Private
SGD?", https://arxiv.org/abs/2006.07709, Sec. 3–4, and Nasr et al. 2021,
https://arxiv.org/abs/2101.04535. The rates are replaced by one-sided
Clopper–Pearson upper confidence bounds FPR⁺ and FNR⁺, each at level
``(1 - confidence)/2``, so both hold together with probability ≥ ``confidence``
(Bonferroni). The decision threshold is not chosen on the examples it is
evaluated on: members and non-members are each split at random (seeded) into a
selection half and an evaluation half; the threshold that maximises the
Clopper–Pearson bound on the selection half is then evaluated, once, on the
evaluation half.

**Assumptions, stated plainly.**

* Each example is treated as an independent Bernoulli trial of one membership
  test. All members were trained into one model, so their outcomes are not
  independent draws of "train with or without this example"; this is a
  heuristic. Steinke, Nasr and Jagielski 2023, "Privacy Auditing with One (1)
  Training Run", https://arxiv.org/abs/2305.08846, show when auditing from one
  training run is rigorous: every candidate example is included independently
  at random (e.g. by a fair coin) before training. Members-versus-test-set
  auditing lacks that randomisation (the test set is not a random half of one
  pool that training flipped coins over), so the figure is an **empirical
  estimate for comparing runs, not a certified bound**.
* It bounds the ε of **one example** (example-level DP). Under user-level DP
  (one client's data as the unit) the guarantee per example is weaker, and
  a per-example attack says nothing directly about the per-client ε.
* A weak attack gives a small bound; a small ε_LB never shows that a model is
  private.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import beta
from sklearn.metrics import roc_auc_score, roc_curve

from fedsim.results.records import AttackResult

AttackMetrics = AttackResult
"""One attack's figures: :class:`fedsim.results.AttackResult` (the name this module used first)."""


def attack_metrics(
    member_scores: np.ndarray,
    nonmember_scores: np.ndarray,
    *,
    attack: str,
    delta: float,
    confidence: float = 0.95,
    seed: int,
) -> AttackResult:
    """Summarise an attack: AUC, TPR at 1 % and 0.1 % FPR, and the empirical ε lower bound.

    Args:
        member_scores: scores of the members, shape ``(M,)``, higher = member.
        nonmember_scores: scores of the non-members, shape ``(N,)``.
        attack: name of the attack, for reports.
        delta: δ at which to bound ε, in ``[0, 1)``.
        confidence: confidence level of the ε bound, in ``(0, 1)``.
        seed: seed of the random selection/evaluation split.

    Returns:
        The metrics; see :class:`fedsim.results.AttackResult`.

    Raises:
        ValueError: as :func:`epsilon_lower_bound`.
    """
    members, nonmembers = _check_scores(member_scores, nonmember_scores)
    labels = np.concatenate([np.ones(len(members)), np.zeros(len(nonmembers))])  # (M + N,)
    scores = np.concatenate([members, nonmembers])  # (M + N,)
    return AttackResult(
        attack=attack,
        auc=float(roc_auc_score(labels, scores)),
        tpr_at_1pct_fpr=tpr_at_fpr(members, nonmembers, max_fpr=0.01),
        tpr_at_01pct_fpr=tpr_at_fpr(members, nonmembers, max_fpr=0.001),
        epsilon_lower_bound=epsilon_lower_bound(
            members, nonmembers, delta=delta, confidence=confidence, seed=seed
        ),
        delta=delta,
        confidence=confidence,
        num_members=len(members),
        num_nonmembers=len(nonmembers),
    )


def tpr_at_fpr(member_scores: np.ndarray, nonmember_scores: np.ndarray, *, max_fpr: float) -> float:
    """The largest true-positive rate among thresholds whose false-positive rate is ≤ ``max_fpr``.

    Read off sklearn's ``roc_curve``. With ``n`` non-members the smallest
    non-zero FPR is ``1/n``, so below that this is the TPR at FPR 0.

    Args:
        member_scores: shape ``(M,)``, higher = member.
        nonmember_scores: shape ``(N,)``.
        max_fpr: the false-positive rate allowed, in ``[0, 1]``.

    Returns:
        The TPR in ``[0, 1]``.

    Raises:
        ValueError: if a score array is empty, not 1-D or not finite, or
            ``max_fpr`` is outside ``[0, 1]``.

    Example:
        >>> tpr_at_fpr(np.array([3.0, 2.0, 0.5]), np.array([1.0, 0.0]), max_fpr=0.0)
        0.6666666666666666
    """
    if not 0 <= max_fpr <= 1:
        raise ValueError(f"max_fpr must be in [0, 1], got {max_fpr}")
    members, nonmembers = _check_scores(member_scores, nonmember_scores)
    labels = np.concatenate([np.ones(len(members)), np.zeros(len(nonmembers))])
    fpr, tpr, _ = roc_curve(labels, np.concatenate([members, nonmembers]), drop_intermediate=False)
    return float(tpr[fpr <= max_fpr].max())


def clopper_pearson_upper(errors: np.ndarray | int, trials: int, *, alpha: float) -> np.ndarray:
    """One-sided Clopper–Pearson upper confidence bound on a binomial rate.

    For ``k`` errors in ``n`` trials the bound is the ``1 - alpha`` quantile of
    ``Beta(k + 1, n - k)``, and 1 when ``k = n``; for ``k = 0`` this is
    ``1 - alpha^(1/n)`` (Clopper and Pearson 1934).

    Args:
        errors: observed errors ``k``, an int or int array, in ``[0, trials]``.
        trials: number of trials ``n`` (≥ 1).
        alpha: probability that the true rate exceeds the bound, in ``(0, 1)``.

    Returns:
        The bound(s) in ``(0, 1]``, float64, the shape of ``errors``.

    Example:
        >>> bool(np.isclose(clopper_pearson_upper(0, 10, alpha=0.05), 1 - 0.05 ** (1 / 10)))
        True
        >>> float(clopper_pearson_upper(10, 10, alpha=0.05))
        1.0
    """
    k = np.asarray(errors, dtype=np.float64)
    upper = beta.ppf(1 - alpha, k + 1, np.maximum(trials - k, 1))
    return np.where(k >= trials, 1.0, upper)


def epsilon_lower_bound(
    member_scores: np.ndarray,
    nonmember_scores: np.ndarray,
    *,
    delta: float,
    confidence: float = 0.95,
    seed: int,
) -> float:
    """Empirical ε lower bound of a threshold attack, chosen on one half and evaluated on the other.

    See the module docstring for the formula, the papers and the assumptions.
    Steps:

    1. Split members and non-members each at random (``seed``) into a
       selection half (``⌊n/2⌋`` examples) and an evaluation half (the rest).
    2. On the selection half, for every threshold ``t`` (predict "member" when
       the score is ≥ ``t``) halfway between consecutive distinct scores (and
       ±∞), compute the Clopper–Pearson ε bound; keep the ``t`` that maximises
       it (the lowest such ``t`` on ties). Maximising the bound rather than the
       point estimate favours thresholds backed by enough examples, and is
       always finite.
    3. On the evaluation half, return the Clopper–Pearson ε bound at that ``t``.

    Args:
        member_scores: shape ``(M,)``, higher = member; ``M ≥ 2``.
        nonmember_scores: shape ``(N,)``; ``N ≥ 2``.
        delta: δ in ``[0, 1)``.
        confidence: probability in ``(0, 1)`` with which FPR⁺ and FNR⁺ both hold.
        seed: seed of the split's ``numpy`` Generator.

    Returns:
        ε_LB ≥ 0 in nats (0 when the attack shows nothing).

    Raises:
        ValueError: if a score array is not 1-D, not finite or has fewer than 2
            scores, or ``delta`` or ``confidence`` is out of range.
    """
    if not 0 <= delta < 1:
        raise ValueError(f"delta must be in [0, 1), got {delta}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    members, nonmembers = _check_scores(member_scores, nonmember_scores)
    if min(len(members), len(nonmembers)) < 2:
        raise ValueError(
            "the ε bound needs at least 2 members and 2 non-members (one for each half), "
            f"got {len(members)} and {len(nonmembers)}"
        )
    rng = np.random.default_rng(seed)
    members, nonmembers = rng.permutation(members), rng.permutation(nonmembers)
    select_m, eval_m = members[: len(members) // 2], members[len(members) // 2 :]
    select_n, eval_n = nonmembers[: len(nonmembers) // 2], nonmembers[len(nonmembers) // 2 :]
    alpha = (1 - confidence) / 2  # Bonferroni: FPR⁺ and FNR⁺ each fail with probability ≤ α
    values = np.unique(np.concatenate([select_m, select_n]))  # (U,), sorted
    midpoints = values[:-1] + (values[1:] - values[:-1]) / 2  # (U - 1,)
    thresholds = np.concatenate([[-np.inf], midpoints, [np.inf]])  # (U + 1,)
    selection = _epsilon_bounds(select_m, select_n, thresholds, delta=delta, alpha=alpha)  # (T,)
    best = thresholds[np.argmax(selection)]
    return float(_epsilon_bounds(eval_m, eval_n, np.array([best]), delta=delta, alpha=alpha)[0])


def _epsilon_bounds(
    members: np.ndarray, nonmembers: np.ndarray, thresholds: np.ndarray, *, delta: float, alpha: float
) -> np.ndarray:
    """Clopper–Pearson ε bounds ``(T,)`` of the tests "score ≥ t" for each threshold ``t`` of ``(T,)``."""
    false_neg = np.searchsorted(np.sort(members), thresholds, side="left")  # (T,) members below t
    false_pos = len(nonmembers) - np.searchsorted(np.sort(nonmembers), thresholds, side="left")  # (T,)
    fnr_up = clopper_pearson_upper(false_neg, len(members), alpha=alpha)  # (T,)
    fpr_up = clopper_pearson_upper(false_pos, len(nonmembers), alpha=alpha)  # (T,)
    return np.maximum(_log_ratio(1 - delta - fpr_up, fnr_up), _log_ratio(1 - delta - fnr_up, fpr_up))


def _log_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``max(0, ln(numerator/denominator))``, and 0 where ``numerator ≤ 0`` or ``denominator ≤ 0``."""
    valid = (numerator > 0) & (denominator > 0)
    ratio = np.where(valid, numerator, 1.0) / np.where(valid, denominator, 1.0)
    return np.maximum(np.log(ratio), 0.0)


def _check_scores(member_scores: np.ndarray, nonmember_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two score arrays as float64, checked to be non-empty, 1-D and finite."""
    arrays = []
    for name, scores in (("member_scores", member_scores), ("nonmember_scores", nonmember_scores)):
        array = np.asarray(scores, dtype=np.float64)
        if array.ndim != 1 or len(array) == 0:
            raise ValueError(f"{name} must be a non-empty 1-D array, got shape {array.shape}")
        if not np.isfinite(array).all():
            raise ValueError(f"{name} must be finite")
        arrays.append(array)
    return arrays[0], arrays[1]
