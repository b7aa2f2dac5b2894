"""The one-run ε lower bound (Steinke, Nasr and Jagielski 2023, https://arxiv.org/abs/2305.08846)."""

import math

import numpy as np
import pytest
from scipy.stats import binom

from fedsim.audit.one_run import audit_scores, epsilon_lower_bound, guess_counts, p_value


def test_without_delta_the_p_value_is_the_binomial_tail():
    # Arrange
    epsilon, r, v = 1.3, 200, 150
    p = math.exp(epsilon) / (1 + math.exp(epsilon))
    # Act
    value = p_value(1000, r, v, epsilon=epsilon, delta=0.0)
    # Assert
    assert value == pytest.approx(binom.sf(v - 1, r, p), rel=1e-12)


def test_all_correct_guesses_bound_epsilon_in_closed_form():
    # Arrange: v = r = m gives P = p^m, so p = 0.05^(1/m) and ε = ln(p / (1 - p))
    p = 0.05 ** (1 / 1000)
    # Act
    bound = epsilon_lower_bound(1000, 1000, 1000, delta=0.0, p_max=0.05)
    # Assert
    assert bound == pytest.approx(math.log(p / (1 - p)), abs=1e-5)
    assert bound == pytest.approx(5.81, abs=0.01)  # the "about 5.8"


def test_the_delta_term_adds_two_m_delta_alpha():
    # Arrange: α = max_i P[v - i ≤ B < v] / i, computed term by term
    m, r, v, epsilon, delta = 500, 100, 80, 1.0, 1e-4
    p = math.exp(epsilon) / (1 + math.exp(epsilon))
    alpha = max(sum(binom.pmf(v - j, r, p) for j in range(1, i + 1)) / i for i in range(1, v + 1))
    # Act
    value = p_value(m, r, v, epsilon=epsilon, delta=delta)
    # Assert
    assert value == pytest.approx(binom.sf(v - 1, r, p) + 2 * m * delta * alpha, rel=1e-9)
    assert epsilon_lower_bound(m, r, v, delta=delta, p_max=0.05) < epsilon_lower_bound(
        m, r, v, delta=0.0, p_max=0.05
    )


def test_chance_level_guesses_show_nothing():
    # Act / Assert
    assert epsilon_lower_bound(1000, 200, 100, delta=1e-5, p_max=0.05) == 0.0


def test_inconsistent_counts_are_refused():
    # Act / Assert
    with pytest.raises(ValueError, match="correct ≤ guesses ≤ canaries"):
        p_value(10, 20, 5, epsilon=1.0, delta=0.0)
    with pytest.raises(ValueError, match="p_max"):
        epsilon_lower_bound(10, 10, 10, delta=0.0, p_max=1.0)


def test_guess_counts_are_even_and_fixed_in_advance():
    # Act / Assert
    assert guess_counts(1000) == (20, 50, 100, 200, 500, 1000)
    assert all(r % 2 == 0 and r <= 30 for r in guess_counts(30))


def test_separated_scores_give_the_bound_of_all_correct_guesses():
    # Arrange
    included = np.random.default_rng(0).random(1000) < 0.5
    # Act
    bound = audit_scores(included.astype(float), included, delta=0.0, confidence=0.95)
    # Assert: 6 guess counts share 5 %; the best uses every guess it can make correctly
    assert bound.correct == bound.guesses
    assert bound.epsilon == pytest.approx(
        max(
            epsilon_lower_bound(1000, r, r, delta=0.0, p_max=0.05 / 6)
            for r in guess_counts(1000)
            if r // 2 <= min(included.sum(), (~included).sum())
        ),
        abs=1e-6,
    )


def test_the_bound_holds_for_randomised_response():
    # Arrange: each score is the coin, flipped with probability 1/(1 + e^ε): exactly ε-DP per canary
    epsilon, seeds = 1.0, 200
    exceed = 0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        included = rng.random(1000) < 0.5
        truthful = rng.random(1000) < math.exp(epsilon) / (1 + math.exp(epsilon))
        scores = np.where(truthful, included, ~included) + rng.normal(0, 1e-3, 1000)
        # Act
        exceed += audit_scores(scores, included, delta=0.0, confidence=0.95).epsilon > epsilon
    # Assert: at most 5 % of audits may exceed ε by chance
    assert exceed <= 0.05 * seeds
