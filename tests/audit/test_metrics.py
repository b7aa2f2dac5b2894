import dataclasses
import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import binom, norm

from fedsim.audit import (
    AttackMetrics,
    attack_metrics,
    clopper_pearson_upper,
    epsilon_lower_bound,
    tpr_at_fpr,
)

DELTA = 1e-5


def gaussian_dp_epsilon(mu: float, delta: float) -> float:
    """ε of a μ-GDP mechanism at δ: solve δ(ε) = Φ(-ε/μ + μ/2) - e^ε Φ(-ε/μ - μ/2) for ε.

    Dong, Roth, Su 2019, https://arxiv.org/abs/1905.02383, Cor. 2.13.
    """

    def gap(eps: float) -> float:
        return norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * norm.cdf(-eps / mu - mu / 2) - delta

    return brentq(gap, 0.0, 100.0)


def test_unit_gaussians_give_the_closed_form_auc_and_tpr():
    # Arrange: members N(1, 1), non-members N(0, 1)
    rng = np.random.default_rng(0)
    members, nonmembers = rng.normal(1.0, 1.0, 20_000), rng.normal(0.0, 1.0, 20_000)
    # Act
    result = attack_metrics(members, nonmembers, attack="gauss", delta=DELTA, seed=0)
    # Assert: AUC = Φ(μ/√2); TPR at FPR f = Φ(μ - Φ⁻¹(1 - f))
    assert result.auc == pytest.approx(norm.cdf(1 / math.sqrt(2)), abs=0.01)  # 0.7602 (measured 0.7614)
    assert result.tpr_at_1pct_fpr == pytest.approx(norm.cdf(1 - norm.ppf(0.99)), abs=0.02)  # 0.0924
    assert result.tpr_at_01pct_fpr == pytest.approx(norm.cdf(1 - norm.ppf(0.999)), abs=0.01)  # 0.0183
    assert (result.attack, result.num_members, result.num_nonmembers) == ("gauss", 20_000, 20_000)
    assert (result.delta, result.confidence) == (DELTA, 0.95)


def test_tpr_at_fpr_on_a_hand_computed_case():
    # Arrange: non-members score 0..99; members 97.5, 98.5, ..., 196.5
    nonmembers = np.arange(100.0)
    members = 97.5 + np.arange(100.0)
    # Act
    at_1pct = tpr_at_fpr(members, nonmembers, max_fpr=0.01)
    at_01pct = tpr_at_fpr(members, nonmembers, max_fpr=0.001)
    # Assert: FPR 1 % lets one non-member (99) through, so members ≥ 98.5 count (99 of 100);
    # FPR 0.1 % < 1/100 means FPR 0: only members above 99 (98 of 100)
    assert at_1pct == pytest.approx(0.99)
    assert at_01pct == pytest.approx(0.98)


def test_identical_distributions_show_no_epsilon():
    # Arrange
    results = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        members, nonmembers = rng.normal(size=2000), rng.normal(size=2000)
        # Act
        results.append(attack_metrics(members, nonmembers, attack="null", delta=DELTA, seed=seed))
    # Assert: measured ε_LB = 0 in all 20 seeds
    assert sum(r.epsilon_lower_bound == 0.0 for r in results) >= 19
    assert all(abs(r.auc - 0.5) < 0.03 for r in results)


def test_perfectly_separated_scores_reach_the_clopper_pearson_ceiling():
    # Arrange: 1000 members in [2, 3], 1000 non-members in [0, 1]
    rng = np.random.default_rng(0)
    members, nonmembers = rng.uniform(2, 3, 1000), rng.uniform(0, 1, 1000)
    # Act
    eps = epsilon_lower_bound(members, nonmembers, delta=DELTA, confidence=0.95, seed=0)
    # Assert: 0 errors in 500 evaluation trials each gives FPR⁺ = FNR⁺ = p = 1 - (0.025)^(1/500)
    # = 0.0073506..., so ε_LB = ln((1 - δ - p)/p) = 4.9055841359...
    p = 1 - 0.025 ** (1 / 500)
    assert eps == pytest.approx(math.log((1 - DELTA - p) / p), rel=1e-9)
    assert eps == pytest.approx(4.9055841359, abs=1e-9)


def test_epsilon_lower_bound_stays_below_the_true_epsilon_of_a_gaussian_mechanism():
    # Arrange: members N(μ, 1) vs non-members N(0, 1) is exactly the μ-GDP Gaussian mechanism
    mu = 1.0
    true_eps = gaussian_dp_epsilon(mu, DELTA)  # 4.377
    bounds = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        members, nonmembers = rng.normal(mu, 1.0, 20_000), rng.normal(0.0, 1.0, 20_000)
        # Act
        bounds.append(epsilon_lower_bound(members, nonmembers, delta=DELTA, seed=seed))
    # Assert: never above the truth (19 of 20 allowed), and the attack has power (measured 1.55–2.69)
    assert true_eps == pytest.approx(4.3772, abs=1e-3)
    assert sum(b <= true_eps for b in bounds) >= 19
    assert min(bounds) > 1.0


def test_epsilon_lower_bound_is_reproducible_for_a_seed():
    # Arrange
    rng = np.random.default_rng(0)
    members, nonmembers = rng.normal(1.0, 1.0, 500), rng.normal(0.0, 1.0, 500)
    # Act
    first = epsilon_lower_bound(members, nonmembers, delta=DELTA, seed=3)
    second = epsilon_lower_bound(members, nonmembers, delta=DELTA, seed=3)
    # Assert
    assert first == second


@pytest.mark.parametrize(("errors", "trials"), [(0, 10), (3, 10), (5, 100), (99, 100)])
def test_clopper_pearson_upper_solves_the_binomial_tail(errors, trials):
    # Act
    upper = float(clopper_pearson_upper(errors, trials, alpha=0.025))
    # Assert: the upper bound p⁺ is where P(Bin(n, p⁺) ≤ k) = α
    assert binom.cdf(errors, trials, upper) == pytest.approx(0.025, rel=1e-6)


def test_clopper_pearson_upper_edge_cases():
    # Act
    bounds = clopper_pearson_upper(np.array([0, 10]), 10, alpha=0.05)
    # Assert: k = 0 has the closed form 1 - α^(1/n); k = n is 1
    assert bounds[0] == pytest.approx(1 - 0.05 ** (1 / 10), rel=1e-12)
    assert bounds[1] == 1.0


def test_attack_metrics_is_frozen():
    # Arrange
    result = attack_metrics(np.array([1.0, 2.0]), np.array([0.0, 0.5]), attack="toy", delta=DELTA, seed=0)
    # Act / Assert
    assert isinstance(result, AttackMetrics)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.auc = 0.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"delta": 1.0}, r"delta must be in \[0, 1\), got 1.0"),
        ({"delta": -0.1}, r"delta must be in \[0, 1\)"),
        ({"confidence": 1.0}, r"confidence must be in \(0, 1\), got 1.0"),
        ({"member_scores": np.array([1.0])}, "at least 2 members and 2 non-members"),
        ({"member_scores": np.array([])}, "member_scores must be a non-empty 1-D array"),
        (
            {"nonmember_scores": np.zeros((2, 2))},
            r"nonmember_scores must be a non-empty 1-D array, got shape \(2, 2\)",
        ),
        ({"member_scores": np.array([1.0, np.nan])}, "member_scores must be finite"),
    ],
)
def test_epsilon_lower_bound_rejects_bad_input(kwargs, message):
    # Arrange
    args = {"member_scores": np.array([1.0, 2.0]), "nonmember_scores": np.array([0.0, 0.5]), "delta": DELTA}
    args.update(kwargs)
    # Act / Assert
    with pytest.raises(ValueError, match=message):
        epsilon_lower_bound(**args, seed=0)


def test_tpr_at_fpr_rejects_a_rate_outside_0_1():
    with pytest.raises(ValueError, match=r"max_fpr must be in \[0, 1\], got 1.5"):
        tpr_at_fpr(np.array([1.0]), np.array([0.0]), max_fpr=1.5)
