import math

import numpy as np
import pytest
import torch
from scipy.stats import norm
from torch import nn

from fedsim.audit import attack_metrics, example_losses, lira_scores, logit_confidence, loss_threshold_scores
from fedsim.data import load_dataset
from tests.fixtures.specs import data_spec

CPU = torch.device("cpu")


def test_loss_attack_separates_members_of_an_overfit_model(overfit_digits):
    # Arrange
    model, members, nonmembers = overfit_digits.model, overfit_digits.members, overfit_digits.nonmembers
    # Act
    member_losses = example_losses(model, members, device=CPU)
    nonmember_losses = example_losses(model, nonmembers, device=CPU)
    result = attack_metrics(
        loss_threshold_scores(member_losses),
        loss_threshold_scores(nonmember_losses),
        attack="loss",
        delta=1e-5,
        seed=0,
    )
    # Assert: measured AUC 0.649 (0.61–0.67 over three data/model seeds),
    # ε_LB 0.97 (0.84–1.25 over split seeds)
    assert member_losses.shape == (200,) and (member_losses >= 0).all()
    assert member_losses.mean() < nonmember_losses.mean()
    assert result.auc > 0.6
    assert result.epsilon_lower_bound > 0.3


def test_example_losses_match_cross_entropy_and_ignore_batch_size(overfit_digits):
    # Arrange
    model, data = overfit_digits.model, overfit_digits.nonmembers
    with torch.no_grad():
        logits = model(torch.tensor(data.x[:5])).double()  # (5, 10)
        expected = nn.functional.cross_entropy(logits, torch.tensor(data.y[:5]), reduction="none").numpy()
    # Act
    losses = example_losses(model, data, device=CPU, batch_size=7)
    # Assert
    np.testing.assert_allclose(losses[:5], expected, rtol=1e-9)
    np.testing.assert_allclose(losses, example_losses(model, data, device=CPU), rtol=1e-4, atol=1e-7)


def test_logit_confidence_agrees_with_the_softmax(overfit_digits):
    # Arrange: a few members (p_y near 1) and non-members
    model, targets = overfit_digits.model, overfit_digits.targets
    rows = np.array([0, 1, 2, 200, 201, 202])
    subset = targets.subset(rows)
    with torch.no_grad():
        probs = model(torch.tensor(subset.x)).double().softmax(dim=1).numpy()  # (6, 10)
    p_true = probs[np.arange(len(rows)), subset.y]
    # Act
    conf = logit_confidence(model, subset, device=CPU)
    # Assert: φ = log(p_y / (1 - p_y))
    np.testing.assert_allclose(conf, np.log(p_true / (1 - p_true)), rtol=1e-4, atol=1e-4)


def test_logit_confidence_stays_finite_when_p_rounds_to_one():
    # Arrange: a linear model whose logit for the first example's label is 1000, the rest 0
    _, test_set = load_dataset(data_spec("digits"))
    data = test_set.subset(np.arange(3))
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.zero_()
        model[1].bias[int(data.y[0])] = 1000.0
    # Act
    conf = logit_confidence(model, data.subset(np.array([0])), device=CPU)
    # Assert: z_y - logsumexp of nine zeros = 1000 - ln 9, where softmax gives p_y = 1 and log(p/(1-p)) = inf
    assert conf[0] == pytest.approx(1000.0 - math.log(9.0), rel=1e-12)


def test_scoring_restores_the_models_training_mode(overfit_digits):
    # Arrange
    model = overfit_digits.model
    model.train()
    # Act
    logit_confidence(model, overfit_digits.members.subset(np.arange(2)), device=CPU)
    # Assert
    assert model.training


def test_loss_threshold_scores_negate_the_loss():
    assert loss_threshold_scores(np.array([0.0, 1.5])).tolist() == [-0.0, -1.5]


def test_lira_scores_use_per_example_means_and_a_pooled_global_variance():
    # Arrange: 4 shadow models, 3 examples, each IN 2 models
    conf = np.array([[1.0, 0.0, 5.0], [3.0, 1.0, 2.0], [0.0, 4.0, 7.0], [-1.0, 3.0, 1.0]])
    mask = np.array([[True, False, True], [True, True, False], [False, False, True], [False, True, False]])
    target = np.array([2.5, 1.0, 3.0])
    mean_in = np.array([2.0, 2.0, 6.0])
    mean_out = np.array([-0.5, 2.0, 1.5])
    # pooled: residuals IN (±1, ±1, ±1) → 6 / 3 dof; OUT (±0.5, ±2, ±0.5) → 9 / 3 dof
    sigma_in, sigma_out = math.sqrt(2.0), math.sqrt(3.0)
    expected = norm.logpdf(target, mean_in, sigma_in) - norm.logpdf(target, mean_out, sigma_out)
    # Act
    scores = lira_scores(target, conf, mask)
    # Assert
    np.testing.assert_allclose(scores, expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("target", "conf", "mask", "message"),
    [
        (np.zeros(3), np.zeros((4, 2)), np.zeros((4, 2), bool), r"shadow_conf must have shape \(K, 3\)"),
        (np.zeros((3, 1)), np.zeros((4, 3)), np.zeros((4, 3), bool), r"target_conf must have shape \(N,\)"),
        (np.zeros(2), np.zeros((4, 2)), np.zeros((2, 2), bool), r"shadow_in has shape \(2, 2\)"),
        (np.zeros(2), np.zeros((4, 2)), np.zeros((4, 2)), "shadow_in must be boolean"),
        (np.array([0.0, np.inf]), np.zeros((4, 2)), np.zeros((4, 2), bool), "must be finite"),
        (
            np.zeros(2),
            np.arange(8.0).reshape(4, 2),
            np.array([[True, True], [True, False], [True, False], [True, False]]),
            r"1 example\(s\) have no OUT shadow model \(first: index 0\)",
        ),
        (
            np.zeros(2),
            np.arange(4.0).reshape(2, 2),
            np.array([[True, False], [False, True]]),
            "no example has two IN shadow models",
        ),
        (
            np.zeros(1),
            np.ones((4, 1)),
            np.array([[True], [True], [False], [False]]),
            "the IN shadow confidences have zero variance",
        ),
    ],
)
def test_lira_scores_reject_bad_input(target, conf, mask, message):
    with pytest.raises(ValueError, match=message):
        lira_scores(target, conf, mask)
