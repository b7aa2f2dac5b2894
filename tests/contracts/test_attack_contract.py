"""Contract every registered membership-inference attack must keep (dp_accounting-style contract suite).

Each attack scores a small CNN overfit on 60 real digits (its members) against
60 test digits (non-members): the scores must be finite float64 arrays of one
score per example, the same for the same context, and higher for members on
average (the model overfits, so any sound attack sees it).
"""

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import nn

from fedsim.audit import AttackContext, AuditSpec, available_attacks
from fedsim.audit.attacks import Attack, LiraAttack, LossAttack
from fedsim.client import TrainSpec, create_data_loader, create_optimizer, train
from fedsim.data import load_dataset
from fedsim.models import ModelSpec, build_model
from tests.fixtures.specs import audit_spec, data_spec

MEMBERS = 60
EPOCHS = 30
TRAIN = TrainSpec(local_epochs=1, batch_size=16, learning_rate=0.05, momentum=0.9, local_steps=None)
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tiny models: a second intra-op thread gains nothing and costs a lot on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def overfit() -> dict:
    """A CNN trained for many epochs on 60 digits, those digits, and 60 test digits."""
    train_set, test_set = load_dataset(data_spec("digits"))
    rng = np.random.default_rng(0)
    members = train_set.subset(np.sort(rng.permutation(len(train_set))[:MEMBERS]))
    nonmembers = test_set.subset(np.sort(rng.permutation(len(test_set))[:MEMBERS]))

    def factory(seed: int) -> nn.Module:
        return build_model(
            ModelSpec("cnn", activation="relu"), input_shape=train_set.input_shape, num_classes=10, seed=seed
        )

    model = factory(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(
            model,
            create_data_loader(members, batch_size=TRAIN.batch_size, shuffle=True, seed=0),
            optimizer=create_optimizer(model, TRAIN),
            criterion=nn.CrossEntropyLoss(),
            epochs=EPOCHS,
            device=CPU,
        )
    finally:
        torch.set_num_threads(threads)
    return {"model": model, "members": members, "nonmembers": nonmembers, "factory": factory}


class AttackContract:
    """Subclass with ``attack`` (an instance) and ``spec`` (an audit that asks for it)."""

    attack: Attack
    spec: AuditSpec

    @pytest.fixture
    def context(self, overfit) -> AttackContext:
        return AttackContext(
            model=overfit["model"],
            members=overfit["members"],
            nonmembers=overfit["nonmembers"],
            member_pool=overfit["members"],
            member_idx=np.arange(MEMBERS),
            spec=self.spec,
            device=CPU,
            model_factory=overfit["factory"],
            train=TRAIN,
        )

    @pytest.fixture
    def scores(self, context) -> tuple[np.ndarray, np.ndarray]:
        outcome = self.attack.scores(context)
        assert not isinstance(outcome, str), outcome  # run, not skipped with a note
        return outcome

    def test_is_registered_and_described(self):
        # Assert
        assert self.attack.name in available_attacks()
        assert self.attack.label and self.attack.description
        assert self.attack.applies(self.spec)

    def test_scores_are_finite_one_per_example(self, scores):
        # Assert
        for part in scores:
            assert isinstance(part, np.ndarray) and part.dtype == np.float64
            assert part.shape == (MEMBERS,)
            assert np.isfinite(part).all()

    def test_members_score_higher_on_average(self, scores):
        # Arrange
        scores_in, scores_out = scores
        # Assert: the model fits its 60 training digits far better than unseen ones
        assert scores_in.mean() > scores_out.mean()

    def test_same_context_same_scores(self, context, scores):
        # Act
        again = self.attack.scores(context)
        # Assert
        assert all(np.array_equal(a, b) for a, b in zip(scores, again, strict=True))


class TestLossAttack(AttackContract):
    attack = LossAttack()
    spec = audit_spec(max_examples=MEMBERS, shadow_models=0, shadow_epochs=None)


class TestLiraAttack(AttackContract):
    attack = LiraAttack()
    spec = audit_spec(max_examples=MEMBERS, shadow_models=4, shadow_epochs=EPOCHS)

    def test_does_not_apply_without_shadow_models(self):
        # Arrange
        spec = audit_spec(max_examples=MEMBERS, shadow_models=0, shadow_epochs=None)
        # Act / Assert
        assert not self.attack.applies(spec)


def test_every_registered_attack_has_a_contract():
    # Arrange
    covered = {cls.attack.name for cls in AttackContract.__subclasses__()}
    # Act / Assert
    assert covered == set(available_attacks())
