import pytest

from fedsim.client import TrainSpec
from fedsim.privacy import (
    DPSGDSpec,
    StoppingRule,
    calibrate_noise,
    compute_epsilon,
    plan_client_round,
    poisson_sample_rate,
    steps_per_epoch,
)
from tests.fixtures.specs import privacy_budget


def test_calibrated_noise_meets_target_from_below():
    # Arrange
    q, steps = poisson_sample_rate(6000, 256), 16 * 12
    # Act
    sigma = calibrate_noise(
        target_epsilon=3.0, target_delta=1e-5, sample_rate=q, steps=steps, accountant="rdp"
    )
    eps = compute_epsilon(((sigma, q, steps),), delta=1e-5, accountant="rdp")
    # Assert: within Opacus's 0.01 tolerance, never above
    assert 2.99 <= eps <= 3.0


def test_resolve_uses_every_round_and_local_steps():
    budget = privacy_budget(mode="sample", target_epsilon=2.0, target_delta=1e-5, max_grad_norm=1.0)
    train = TrainSpec(local_epochs=1, batch_size=32, learning_rate=0.1, momentum=0.0, local_steps=5)
    sigma = plan_client_round(
        budget, num_examples=449, batch_size=32, steps_per_round=train.steps_per_round, rounds=4
    ).noise_multiplier
    q = poisson_sample_rate(449, 32)
    assert q == 1 / 15 and steps_per_epoch(q) == 15
    # 4 rounds of min(15, 5) steps each
    assert compute_epsilon(((sigma, q, 20),), delta=1e-5, accountant="rdp") == pytest.approx(2.0, abs=0.01)


def test_fixed_noise_multiplier_is_used_as_given():
    budget = privacy_budget(mode="sample", noise_multiplier=0.7, target_delta=1e-5, max_grad_norm=1.0)
    assert (
        plan_client_round(
            budget, num_examples=10, batch_size=2, steps_per_round=lambda s: s, rounds=3
        ).noise_multiplier
        == 0.7
    )


def sample_budget(**kwargs):
    return privacy_budget(mode="sample", target_delta=1e-5, max_grad_norm=1.0, **kwargs)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: sample_budget(), "sample-level DP needs target_epsilon, noise_multiplier or tiers"),
        (lambda: sample_budget(target_epsilon=1.0, calibrate_for="never"), "calibrate_for must be one of"),
        # the run's stopping rule and Opacus's settings moved out of the budget, with their checks
        (lambda: StoppingRule(min_clients=0, when_too_few="stop"), "min_clients must be ≥ 1"),
        (lambda: StoppingRule(min_clients=1, when_too_few="never"), "when_too_few must be one of"),
        (
            lambda: DPSGDSpec(grad_sample_mode="jax", secure_mode=False, dp_lstm="fast"),
            "grad_sample_mode must be one of",
        ),
        (
            lambda: DPSGDSpec(grad_sample_mode="ghost", secure_mode=False, dp_lstm="cudnn"),
            "dp_lstm must be one of",
        ),
        (lambda: sample_budget(target_epsilon=-1.0), "target_epsilon must be a finite number > 0"),
        (lambda: sample_budget(target_epsilon=1.0, accountant="gdp"), "accountant must be one of"),
    ],
)
def test_budget_validation(build, message):
    with pytest.raises(ValueError, match=message):
        build()
