"""Evaluating a model on a labelled data set."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fedsim.data import ArrayDataset

_ROUND_SUBSET_STREAM = 2
"""Second word of the seed of the test subset's draw (``[run seed, stream]``), apart from other streams."""


@dataclass(frozen=True)
class EvaluationSpec:
    """How the server tests the global model after each round.

    Args:
        round_examples: test examples the model is evaluated on after each round
            but the last, a fixed random subset drawn once from the run's seed;
            the initial model and the last round use the whole test set. None:
            the whole test set after every round.

    Raises:
        ValueError: if ``round_examples`` is < 1.
    """

    round_examples: int | None

    def __post_init__(self) -> None:
        if self.round_examples is not None and self.round_examples < 1:
            raise ValueError(f"round_examples must be ≥ 1, got {self.round_examples}")

    def round_subset(self, data: ArrayDataset, seed: int) -> ArrayDataset:
        """The examples tested between the first and the last round: ``data`` or a seeded subset of it."""
        if self.round_examples is None or self.round_examples >= len(data):
            return data
        rows = np.random.default_rng([seed, _ROUND_SUBSET_STREAM]).choice(
            len(data), self.round_examples, replace=False
        )
        return data.subset(np.sort(rows))


@dataclass(frozen=True)
class EvalMetrics:
    """Loss and accuracy of a model on a data set.

    Attributes:
        loss: mean cross-entropy (nats per example).
        accuracy: fraction of examples whose arg-max logit is the label, in ``[0, 1]``.
        num_examples: examples evaluated.
    """

    loss: float
    accuracy: float
    num_examples: int


@torch.no_grad()
def evaluate(
    model: nn.Module, data: ArrayDataset, *, device: torch.device, batch_size: int = 1024
) -> EvalMetrics:
    """Evaluate ``model`` on every example of ``data``.

    Args:
        model: maps ``(B, *input)`` to logits ``(B, K)``.
        data: the examples.
        device: where the model runs.
        batch_size: examples per forward pass (memory only; the result is the same).

    Raises:
        ValueError: if ``data`` is empty.
    """
    if len(data) == 0:
        raise ValueError("cannot evaluate on an empty data set")
    model.to(device).eval()
    loss_sum, correct = 0.0, 0
    with torch.inference_mode():  # no autograd graph: evaluation only reads the weights
        for start in range(0, len(data), batch_size):
            x = torch.tensor(data.x[start : start + batch_size], device=device)  # (B, *input)
            y = torch.tensor(data.y[start : start + batch_size], device=device)  # (B,)
            logits = model(x)  # (B, K)
            loss_sum += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(dim=1) == y).sum())
    return EvalMetrics(loss=loss_sum / len(data), accuracy=correct / len(data), num_examples=len(data))
