"""Shadow models for online LiRA: models trained with and without each audited example.

Carlini et al. 2022, "Membership Inference Attacks From First Principles",
https://arxiv.org/abs/2112.03570, Sec. 4 (Algorithm 1) and Sec. 5: train ``K``
shadow models, each on a random half of the audited ("target") examples, so
that every example is IN exactly ``K/2`` of them and OUT of the others; their
confidences on each example give the IN and OUT Gaussians that
:func:`fedsim.audit.lira_scores` compares the audited model's confidence with.

**An approximation.** The shadow models are trained without differential
privacy: centrally, or (with a :class:`ShadowFederation`) by FedAvg over IID
shadow clients with the audited run's rounds, cohort and local training,
whereas the audited model may have had non-IID clients and DP-SGD. A shadow model
that imitates the audited training badly only weakens the attack (its
Gaussians fit the audited model's confidences worse), so the ε lower bound of
:func:`fedsim.audit.attack_metrics` stays a valid, if looser, estimate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fedsim.audit.scores import logit_confidence
from fedsim.client import TrainSpec, create_data_loader, create_optimizer
from fedsim.client import train as client_train  # the name `train` is the TrainSpec argument below
from fedsim.data import ArrayDataset


@dataclass(frozen=True)
class ShadowFederation:
    """Train each shadow model as the audited run was trained: plain FedAvg (McMahan et al. 2017, https://arxiv.org/abs/1602.05629).

    Args:
        num_clients: shadow clients; each shadow model's data is split among them at random (IID).
        rounds: FedAvg rounds (≥ 1).
        clients_per_round: clients drawn at random each round (1 ≤ … ≤ ``num_clients``);
            each trains ``train.local_epochs`` passes (at most ``train.local_steps`` steps)
            from the global model, and the results are averaged weighted by examples.
    """

    num_clients: int
    rounds: int
    clients_per_round: int

    def __post_init__(self) -> None:
        if self.rounds < 1 or not 1 <= self.clients_per_round <= self.num_clients:
            raise ValueError(
                f"need rounds ≥ 1 and 1 ≤ clients_per_round ≤ num_clients, got {self.rounds}, "
                f"{self.clients_per_round}, {self.num_clients}"
            )


def balanced_in_mask(*, num_shadow: int, num_examples: int, seed: int) -> np.ndarray:
    """Which shadow model trains on which example, each example in exactly half of them.

    Each column is an independent uniformly random choice of ``K/2`` of the
    ``K`` shadow models (Carlini et al. 2022, https://arxiv.org/abs/2112.03570,
    Sec. 5, where every example is IN exactly half of the shadow models).

    Args:
        num_shadow: ``K``, even and ≥ 2.
        num_examples: ``N`` (≥ 0).
        seed: seed of the ``numpy`` Generator.

    Returns:
        bool array of shape ``(K, N)``; every column has ``K/2`` True entries.

    Raises:
        ValueError: if ``num_shadow`` is odd or below 2, or ``num_examples < 0``.

    Example:
        >>> balanced_in_mask(num_shadow=4, num_examples=3, seed=0).sum(axis=0).tolist()
        [2, 2, 2]
    """
    if num_shadow < 2 or num_shadow % 2:
        raise ValueError(f"num_shadow must be even and ≥ 2 (each example IN exactly half), got {num_shadow}")
    if num_examples < 0:
        raise ValueError(f"num_examples must be ≥ 0, got {num_examples}")
    rng = np.random.default_rng(seed)
    order = rng.random((num_shadow, num_examples)).argsort(axis=0)  # (K, N), a uniform permutation per column
    return order < num_shadow // 2


def shadow_confidences(
    *,
    model_factory: Callable[[int], nn.Module],
    target: ArrayDataset,
    always_in: ArrayDataset | None,
    num_shadow: int,
    epochs: int,
    train: TrainSpec,
    device: torch.device,
    seed: int,
    federation: ShadowFederation | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Train ``K`` shadow models and return their LiRA confidences on the audited examples.

    Shadow model ``k`` is ``model_factory(seed_k)`` trained without DP on
    ``always_in`` plus its IN subset of ``target`` (:func:`balanced_in_mask`:
    every example is IN exactly ``K/2`` models), centrally (``epochs`` shuffled
    passes of plain SGD, :func:`fedsim.client.create_optimizer`) or by FedAvg
    (``federation``); it then scores all ``N`` target examples with
    :func:`fedsim.audit.logit_confidence`.

    Args:
        model_factory: ``seed -> freshly initialised model`` of the audited architecture.
        target: the ``N`` audited examples (members and non-members of the audited model alike).
        always_in: data every shadow model trains on (the rest of the audited
            model's training data), or None.
        num_shadow: ``K``, even and ≥ 2 (:func:`fedsim.audit.lira_scores` needs ``K ≥ 4``).
        epochs: passes over each shadow model's data when trained centrally (≥ 1).
        train: batch size, learning rate and momentum (under FedAvg also local epochs and steps).
        device: where the shadow models train and run.
        seed: seed of the IN mask and of every shadow model's initialisation and shuffling.
        federation: train each shadow model by FedAvg like this instead of centrally.

    Returns:
        ``(conf, in_mask)``: float64 confidences ``φ`` and the bool IN mask, both ``(K, N)``.

    Raises:
        ValueError: if ``num_shadow`` is odd or below 2, ``epochs < 1``, or
            ``always_in`` does not match ``target``'s classes or input shape.
    """
    _check_shadow_data(target, always_in, epochs=epochs)
    rng = np.random.default_rng(seed)
    in_mask = balanced_in_mask(num_shadow=num_shadow, num_examples=len(target), seed=int(rng.integers(2**31)))
    seeds = rng.integers(2**31, size=(num_shadow, 2))  # (K, 2): model init, loader shuffling
    conf = np.empty(in_mask.shape, dtype=np.float64)  # (K, N)
    for k in range(num_shadow):
        data = concatenate_datasets(always_in, target.subset(np.flatnonzero(in_mask[k])))
        model = model_factory(int(seeds[k, 0])).to(device)
        if federation is None:
            _fit(
                model, data, train=train, epochs=epochs, max_steps=None, device=device, seed=int(seeds[k, 1])
            )
        else:
            _fedavg(model, data, train=train, federation=federation, device=device, seed=int(seeds[k, 1]))
        conf[k] = logit_confidence(model, target, device=device)
    return conf, in_mask


def _check_shadow_data(target: ArrayDataset, always_in: ArrayDataset | None, *, epochs: int) -> None:
    """Check :func:`shadow_confidences`'s ``epochs`` and that ``always_in`` matches ``target``.

    Raises:
        ValueError: if ``epochs < 1`` or the classes or input shapes differ.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be ≥ 1, got {epochs}")
    if always_in is not None and (
        always_in.num_classes != target.num_classes or always_in.input_shape != target.input_shape
    ):
        raise ValueError(
            f"always_in ({always_in.num_classes} classes, inputs {always_in.input_shape}) does not match "
            f"target ({target.num_classes} classes, inputs {target.input_shape})"
        )


def _fit(
    model: nn.Module,
    data: ArrayDataset,
    *,
    train: TrainSpec,
    epochs: int,
    max_steps: int | None,
    device,
    seed: int,
) -> None:
    """Plain SGD on ``data`` (no DP): ``epochs`` shuffled passes, at most ``max_steps`` steps."""
    loader = create_data_loader(data, batch_size=train.batch_size, shuffle=True, seed=seed)
    client_train(
        model,
        loader,
        optimizer=create_optimizer(model, train),
        criterion=nn.CrossEntropyLoss(),
        epochs=epochs,
        device=device,
        max_steps=max_steps,
    )


def _fedavg(
    model: nn.Module, data: ArrayDataset, *, train: TrainSpec, federation: ShadowFederation, device, seed: int
) -> None:
    """FedAvg of ``model`` over an IID split of ``data`` (plain SGD on the clients, no DP)."""
    rng = np.random.default_rng(seed)
    parts = [p for p in np.array_split(rng.permutation(len(data)), federation.num_clients) if len(p)]
    for _ in range(federation.rounds):
        cohort = rng.choice(len(parts), size=min(federation.clients_per_round, len(parts)), replace=False)
        start = {k: v.detach().clone() for k, v in model.state_dict().items()}
        total, weights = 0, None
        for c in cohort:
            model.load_state_dict(start)
            _fit(
                model,
                data.subset(parts[c]),
                train=train,
                epochs=train.local_epochs,
                max_steps=train.local_steps,
                device=device,
                seed=int(rng.integers(2**31)),
            )
            n = len(parts[c])
            state = model.state_dict()
            weights = (
                {k: v.detach().double() * n for k, v in state.items()}
                if weights is None
                else {k: weights[k] + state[k].detach().double() * n for k in weights}
            )
            total += n
        model.load_state_dict({k: (v / total).to(start[k].dtype) for k, v in weights.items()})


def concatenate_datasets(first: ArrayDataset | None, second: ArrayDataset) -> ArrayDataset:
    """The rows of ``first`` (if any) followed by those of ``second``; natural users are dropped."""
    if first is None:
        return second
    return ArrayDataset(
        np.concatenate([first.x, second.x]),
        np.concatenate([first.y, second.y]),
        second.num_classes,
        second.name,
        vocab=second.vocab,
    )
