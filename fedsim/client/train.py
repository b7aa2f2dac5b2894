"""Local training on one client: a plain PyTorch loop.

The loop knows nothing of differential privacy. Under DP-SGD, the privacy layer
(:func:`fedsim.privacy.make_private`) hands it a wrapped model, optimiser,
loss and Poisson-sampling loader that behave like their plain counterparts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from fedsim.data import ArrayDataset


@dataclass(frozen=True)
class TrainSpec:
    """Local training hyper-parameters, the same for every client.

    Args:
        local_epochs: passes over the client's data per round (≥ 1).
        batch_size: examples per batch (≥ 1); under DP-SGD with Poisson
            sampling this is the *expected* batch size.
        learning_rate: SGD step size (> 0).
        momentum: SGD momentum in ``[0, 1)``.
        local_steps: if set, a round stops after this many optimiser steps even
            within an epoch (pfl's ``local_num_steps``); None: whole epochs.

    Raises:
        ValueError: if a setting is out of range.
    """

    local_epochs: int
    batch_size: int
    learning_rate: float
    momentum: float
    local_steps: int | None

    def __post_init__(self) -> None:
        if self.local_epochs < 1:
            raise ValueError(f"local_epochs must be ≥ 1, got {self.local_epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {self.batch_size}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.local_steps is not None and self.local_steps < 1:
            raise ValueError(f"local_steps must be ≥ 1, got {self.local_steps}")

    def steps_per_round(self, steps_per_epoch: int) -> int:
        """Optimiser steps one client takes in one round, given its steps per epoch."""
        steps = self.local_epochs * steps_per_epoch
        return steps if self.local_steps is None else min(steps, self.local_steps)


@dataclass(frozen=True)
class TrainMetrics:
    """What one client's local training did in one round.

    Attributes:
        loss: mean training loss over the batches seen (nan if none).
        num_examples: size of the client's training set (the FedAvg weight).
        steps: optimiser steps taken.
    """

    loss: float
    num_examples: int
    steps: int


def create_data_loader(
    data: ArrayDataset, *, batch_size: int, shuffle: bool, seed: int | None = None
) -> DataLoader:
    """Wrap an in-memory data set in a ``DataLoader`` of ``(x, y)`` tensor batches.

    Args:
        data: the examples.
        batch_size: examples per batch.
        shuffle: reshuffle every epoch.
        seed: seed of the loader's own ``torch.Generator`` (used for shuffling,
            and by Opacus for Poisson sampling when the loader is made private).
    """
    generator = None
    if seed is not None:
        generator = torch.Generator()
        generator.manual_seed(seed)
    tensors = TensorDataset(torch.from_numpy(np.array(data.x)), torch.from_numpy(np.array(data.y)))
    return DataLoader(tensors, batch_size=batch_size, shuffle=shuffle, generator=generator)


def create_optimizer(model: nn.Module, spec: TrainSpec) -> torch.optim.Optimizer:
    """Create the client's SGD optimiser for ``model``."""
    return torch.optim.SGD(model.parameters(), lr=spec.learning_rate, momentum=spec.momentum)


def train(
    model: nn.Module,
    loader: DataLoader,
    *,
    optimizer: torch.optim.Optimizer,
    criterion: nn.Module,
    epochs: int,
    device: torch.device,
    max_steps: int | None = None,
) -> TrainMetrics:
    """Run ``epochs`` passes of mini-batch training.

    Args:
        model: maps ``(B, *input)`` to logits ``(B, K)``; already on ``device``.
        loader: yields ``(x, y)`` batches; a batch may be empty under Poisson
            sampling.
        optimizer: steps ``model``'s parameters.
        criterion: loss of ``(logits, labels)``, reduced to a scalar.
        epochs: passes over ``loader`` (≥ 1).
        device: where batches are moved.
        max_steps: stop after this many optimiser steps (None: run all epochs).

    Returns:
        The mean batch loss, the data set size and the number of optimiser steps.
    """
    model.train()
    total_loss, batches, steps = 0.0, 0, 0
    for _ in range(epochs):
        for x, y in loader:
            if max_steps is not None and steps >= max_steps:
                break
            x, y = x.to(device), y.to(device)  # (B, *input), (B,)
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            steps += 1
            if len(y) > 0:
                total_loss += float(loss.detach())
                batches += 1
    return TrainMetrics(
        loss=total_loss / batches if batches else float("nan"),
        num_examples=len(loader.dataset),
        steps=steps,
    )
