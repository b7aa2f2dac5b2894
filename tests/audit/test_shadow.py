import numpy as np
import pytest
import torch

from fedsim.audit import attack_metrics, balanced_in_mask, lira_scores, logit_confidence, shadow_confidences
from fedsim.client import TrainSpec
from fedsim.data import load_dataset
from tests.fixtures.specs import data_spec

from .conftest import EPOCHS, NUM_MEMBERS, SPEC

CPU = torch.device("cpu")
TINY_SPEC = TrainSpec(local_epochs=1, batch_size=16, learning_rate=0.05, momentum=0.0, local_steps=None)


def test_balanced_in_mask_puts_each_example_in_half_the_models():
    # Act
    mask = balanced_in_mask(num_shadow=6, num_examples=500, seed=0)
    # Assert
    assert mask.shape == (6, 500) and mask.dtype == np.bool_
    assert (mask.sum(axis=0) == 3).all()
    assert np.array_equal(mask, balanced_in_mask(num_shadow=6, num_examples=500, seed=0))
    assert not np.array_equal(mask, balanced_in_mask(num_shadow=6, num_examples=500, seed=1))
    # every model trains on about half the examples
    assert np.abs(mask.mean(axis=1) - 0.5).max() < 0.1


def test_lira_with_four_shadow_models_attacks_an_overfit_model(overfit_digits):
    # Arrange: the audited examples are the model's 200 members and 200 non-members
    targets = overfit_digits.targets
    is_member = np.arange(len(targets)) < NUM_MEMBERS
    # Act
    conf, in_mask = shadow_confidences(
        model_factory=lambda seed: overfit_digits.factory(seed=seed),
        target=targets,
        always_in=None,
        num_shadow=4,
        epochs=EPOCHS,
        train=SPEC,
        device=CPU,
        seed=1,
    )
    scores = lira_scores(logit_confidence(overfit_digits.model, targets, device=CPU), conf, in_mask)
    result = attack_metrics(scores[is_member], scores[~is_member], attack="lira", delta=1e-5, seed=0)
    # Assert: measured (seed 1) AUC 0.660, TPR at 1 % FPR 0.105 (chance: 0.01), ε_LB 0.45;
    # over shadow seeds 1–3 and K = 4 or 8: AUC 0.632–0.718, TPR at 1 % FPR 0.065–0.140
    assert conf.shape == in_mask.shape == (4, 2 * NUM_MEMBERS)
    assert (in_mask.sum(axis=0) == 2).all()
    assert np.isfinite(conf).all()
    # shadow models are confident on their own training examples
    assert conf[in_mask].mean() > conf[~in_mask].mean()
    assert result.auc > 0.6
    assert result.tpr_at_1pct_fpr > 0.03
    print(f"LiRA: {result}")


def test_shadow_confidences_are_deterministic_for_a_seed():
    # Arrange: a tiny run (40 audited examples, 20 always-in, 1 epoch)
    train_set, test_set = load_dataset(data_spec("digits"))
    target, always_in = test_set.subset(np.arange(40)), train_set.subset(np.arange(20))
    kwargs = {
        "model_factory": _factory(train_set),
        "target": target,
        "always_in": always_in,
        "num_shadow": 2,
        "epochs": 1,
        "train": TINY_SPEC,
        "device": CPU,
    }
    # Act
    first = shadow_confidences(**kwargs, seed=7)
    second = shadow_confidences(**kwargs, seed=7)
    other = shadow_confidences(**kwargs, seed=8)
    # Assert
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.array_equal(first[1], other[1])
    assert (first[1].sum(axis=0) == 1).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_shadow": 3}, r"num_shadow must be even and ≥ 2 \(each example IN exactly half\), got 3"),
        ({"num_shadow": 0}, r"num_shadow must be even and ≥ 2 .*got 0"),
        ({"epochs": 0}, "epochs must be ≥ 1, got 0"),
        (
            {"always_in": "wrong-classes"},
            r"always_in \(3 classes, inputs \(1, 8, 8\)\) does not match target",
        ),
    ],
)
def test_shadow_confidences_reject_bad_arguments(kwargs, message):
    # Arrange
    train_set, test_set = load_dataset(data_spec("digits"))
    args = {
        "model_factory": _factory(train_set),
        "target": test_set.subset(np.arange(4)),
        "always_in": None,
        "num_shadow": 2,
        "epochs": 1,
        "train": TINY_SPEC,
        "device": CPU,
        "seed": 0,
    }
    args.update(kwargs)
    if args["always_in"] == "wrong-classes":
        small = train_set.subset(np.flatnonzero(train_set.y < 3)[:4])
        args["always_in"] = type(small)(small.x, small.y, 3, "digits-0-2")
    # Act / Assert
    with pytest.raises(ValueError, match=message):
        shadow_confidences(**args)


def _factory(train_set):
    from fedsim.models import ModelSpec, build_model

    def create(seed: int) -> torch.nn.Module:
        return build_model(
            ModelSpec("cnn", activation="relu"), input_shape=train_set.input_shape, num_classes=10, seed=seed
        )

    return create
