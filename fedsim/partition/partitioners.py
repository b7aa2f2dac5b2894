"""Splitting a training set among clients with flwr-datasets partitioners.

fedsim does not re-implement partitioning: each split is a
:mod:`flwr_datasets.partitioner` class, chosen by name from a registry, and
applied to a small index table (``index``, ``label``) so that the result maps
back to rows of an in-memory :class:`~fedsim.data.ArrayDataset`.

* ``iid``: :class:`~flwr_datasets.partitioner.IidPartitioner` over a copy of the
  rows shuffled with the scenario's seed (the partitioner itself takes
  contiguous shards and has no seed).
* ``dirichlet``: :class:`~flwr_datasets.partitioner.DirichletPartitioner`, the
  label-skew split of Hsu et al. 2019 (https://arxiv.org/abs/1909.06335): each
  class is divided among clients with proportions drawn from Dir(alpha); a
  smaller alpha gives more skewed clients.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PartitionSpec:
    """How the training set is split among clients.

    Args:
        name: registry name, one of :func:`available_partitioners`.
        num_partitions: number of clients (≥ 1).
        seed: seed of the split (shuffling, Dirichlet draws).
        alpha: Dirichlet concentration (> 0); required for ``dirichlet``, unused
            otherwise.
        min_partition_size: for ``dirichlet``, the fewest examples a client may
            get; draws are repeated until every client has at least this many
            (flwr-datasets semantics; default 10 as there).
    """

    name: str
    num_partitions: int
    seed: int
    alpha: float | None = None
    min_partition_size: int = 10

    def __post_init__(self) -> None:
        if self.name not in _PARTITIONERS:
            raise ValueError(f"unknown partitioner {self.name!r}; choose one of {available_partitioners()}")
        if self.num_partitions < 1:
            raise ValueError(f"num_partitions must be ≥ 1, got {self.num_partitions}")
        if self.name == "dirichlet" and (self.alpha is None or self.alpha <= 0):
            raise ValueError(f"dirichlet needs alpha > 0, got {self.alpha}")
        if self.min_partition_size < 0:
            raise ValueError(f"min_partition_size must be ≥ 0, got {self.min_partition_size}")


def _iid(spec: PartitionSpec):
    from flwr_datasets.partitioner import IidPartitioner

    return IidPartitioner(num_partitions=spec.num_partitions)


def _dirichlet(spec: PartitionSpec):
    from flwr_datasets.partitioner import DirichletPartitioner

    return DirichletPartitioner(
        num_partitions=spec.num_partitions,
        partition_by="label",
        alpha=spec.alpha,
        min_partition_size=spec.min_partition_size,
        self_balancing=False,
        shuffle=True,
        seed=spec.seed,
    )


_PARTITIONERS: dict[str, Callable[[PartitionSpec], object]] = {
    "iid": _iid,
    "dirichlet": _dirichlet,
}

# Partitioners that take contiguous shards and need the rows shuffled first.
_NEEDS_SHUFFLE = {"iid"}


def available_partitioners() -> list[str]:
    """Names accepted by :func:`create_partitioner`."""
    return sorted(_PARTITIONERS)


def create_partitioner(spec: PartitionSpec):
    """Create the flwr-datasets partitioner named by ``spec``.

    Returns:
        A new :class:`flwr_datasets.partitioner.Partitioner`, not yet given a data set.
    """
    return _PARTITIONERS[spec.name](spec)


def partition(labels: np.ndarray, spec: PartitionSpec) -> list[np.ndarray]:
    """Split row indices among ``spec.num_partitions`` clients.

    Args:
        labels: integer labels, shape ``(N,)``.
        spec: the split.

    Returns:
        One sorted int64 index array per client (``partition_id`` order); the
        arrays are disjoint and together cover ``range(N)``. The same ``spec``
        and labels always give the same split.

    Raises:
        ValueError: if the split is impossible (e.g. more clients than rows, or a
            Dirichlet ``min_partition_size`` no draw could satisfy).

    Example:
        >>> parts = partition(np.repeat(np.arange(2), 5), PartitionSpec("iid", 2, seed=0))
        >>> [len(p) for p in parts]
        [5, 5]
    """
    import datasets

    datasets.disable_progress_bars()
    n = len(labels)
    if spec.num_partitions > n:
        raise ValueError(f"cannot split {n} examples among {spec.num_partitions} clients")
    table = datasets.Dataset.from_dict(
        {"index": np.arange(n, dtype=np.int64), "label": np.asarray(labels, dtype=np.int64)}
    )
    if spec.name in _NEEDS_SHUFFLE:
        table = table.shuffle(seed=spec.seed).flatten_indices()
    partitioner = create_partitioner(spec)
    partitioner.dataset = table
    try:
        parts = [
            np.sort(np.asarray(partitioner.load_partition(pid)["index"], dtype=np.int64))
            for pid in range(spec.num_partitions)
        ]
    except ValueError as err:
        raise ValueError(f"{spec.name} partitioner failed: {err}") from err
    return parts


def partition_stats(labels: np.ndarray, parts: list[np.ndarray], *, num_classes: int) -> np.ndarray:
    """Count labels per client.

    Args:
        labels: integer labels, shape ``(N,)``.
        parts: index arrays from :func:`partition`.
        num_classes: number of classes ``K``.

    Returns:
        int64 counts, shape ``(num_clients, K)``.

    Example:
        >>> partition_stats(np.array([0, 1, 1]), [np.array([0]), np.array([1, 2])], num_classes=2).tolist()
        [[1, 0], [0, 2]]
    """
    return np.stack([np.bincount(labels[p], minlength=num_classes) for p in parts])
