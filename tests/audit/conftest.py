"""A CNN overfit on a small real digits training set, shared by the score and shadow tests."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import numpy as np
import pytest
import torch
from torch import nn

from fedsim.client import TrainSpec, create_data_loader, create_optimizer, train
from fedsim.data import ArrayDataset, load_dataset
from fedsim.models import ModelSpec, build_model
from tests.fixtures.specs import data_spec

NUM_MEMBERS = 200
"""Members (and as many non-members): with 450 members the CNN generalises so well on digits
that the loss attack's AUC is only ≈ 0.55–0.58; with 200 it is ≈ 0.61–0.67 (3 seeds measured)."""
EPOCHS = 40
SPEC = TrainSpec(local_epochs=EPOCHS, batch_size=32, learning_rate=0.05, momentum=0.9, local_steps=None)


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one CPU thread, then restore the setting.

    These models are tiny, so a second intra-op thread gains nothing, and on a busy machine
    it costs a lot (measured: 0.7–3 s with one thread against 12–19 s with two).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _single_threaded_torch() -> Iterator[None]:
    with one_torch_thread():
        yield


@dataclass(frozen=True)
class OverfitModel:
    model: nn.Module
    members: ArrayDataset
    nonmembers: ArrayDataset
    targets: ArrayDataset  # members then non-members, (2 * NUM_MEMBERS,)
    factory: partial


@pytest.fixture(scope="session")
def overfit_digits() -> OverfitModel:
    train_set, test_set = load_dataset(data_spec("digits"))
    rng = np.random.default_rng(0)
    members = train_set.subset(rng.permutation(len(train_set))[:NUM_MEMBERS])
    nonmembers = test_set.subset(rng.permutation(len(test_set))[:NUM_MEMBERS])
    factory = partial(
        build_model, ModelSpec("cnn", activation="relu"), input_shape=train_set.input_shape, num_classes=10
    )
    model = factory(seed=0)
    with one_torch_thread():
        train(
            model,
            create_data_loader(members, batch_size=SPEC.batch_size, shuffle=True, seed=0),
            optimizer=create_optimizer(model, SPEC),
            criterion=nn.CrossEntropyLoss(),
            epochs=EPOCHS,
            device=torch.device("cpu"),
        )
    targets = ArrayDataset(
        np.concatenate([members.x, nonmembers.x]), np.concatenate([members.y, nonmembers.y]), 10, "digits"
    )
    return OverfitModel(model, members, nonmembers, targets, factory)
