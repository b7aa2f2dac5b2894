"""Splitting a training set among clients with flwr-datasets partitioners.

fedsim does not re-implement partitioning: each split is a
:mod:`flwr_datasets.partitioner` class, chosen by name from a registry, and
applied to a small index table (``index``, ``label``, ``group``) so that the
result maps back to rows of an in-memory :class:`~fedsim.data.ArrayDataset`.

* ``iid``: :class:`~flwr_datasets.partitioner.IidPartitioner` over a copy of the
  rows shuffled with the scenario's seed (the partitioner itself takes
  contiguous shards and has no seed).
* ``dirichlet``: :class:`~flwr_datasets.partitioner.DirichletPartitioner`, the
  label-skew split of Hsu et al. 2019 (https://arxiv.org/abs/1909.06335): each
  class is divided among clients with proportions drawn from Dir(alpha); a
  smaller alpha gives more skewed clients.
* ``pathological``: :class:`~flwr_datasets.partitioner.PathologicalPartitioner`,
  each client holds ``classes_per_client`` classes (McMahan et al. 2017,
  https://arxiv.org/abs/1602.05629, Sec. 3, where each client had 2 digits);
  client ``i``'s first class is ``i mod K`` (so every class is used when there
  are at least ``K`` clients) and the others are drawn at random with the seed;
  each class's rows are shared evenly among the clients that hold it.
* ``shard``: :class:`~flwr_datasets.partitioner.ShardPartitioner`, McMahan et
  al.'s original non-IID scheme: sort rows by label, cut them into shards of
  ``shard_size`` rows and deal ``shards_per_client`` shards to each client.
  Every shard has the same size (without ``shard_size``, the largest that
  fits), so the rows beyond ``num_partitions * shards_per_client * shard_size``
  are not used (fewer than one shard per client without ``shard_size``).
* ``natural-id``: :class:`~flwr_datasets.partitioner.NaturalIdPartitioner`,
  one client per natural user (writer, book, speaking role), in the order of
  the data set's user names; the number of clients must equal the number of users.
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
            get (≥ 0; required); draws are repeated until every client has at
            least this many (flwr-datasets semantics); None for other partitioners.
        classes_per_client: for ``pathological``, the number of classes each
            client holds (≥ 1).
        shards_per_client: for ``shard``, the number of shards each client gets (≥ 1).
        shard_size: for ``shard``, rows per shard (≥ 1); None makes shards as
            large as the data allows (flwr-datasets semantics).

    Raises:
        ValueError: for an unknown partitioner, a count below 1, or a missing or
            out-of-range parameter of the chosen partitioner.
    """

    name: str
    num_partitions: int
    seed: int
    alpha: float | None
    min_partition_size: int | None
    classes_per_client: int | None
    shards_per_client: int | None
    shard_size: int | None

    def __post_init__(self) -> None:
        if self.name not in _PARTITIONERS:
            raise ValueError(f"unknown partitioner {self.name!r}; choose one of {available_partitioners()}")
        if self.num_partitions < 1:
            raise ValueError(f"num_partitions must be ≥ 1, got {self.num_partitions}")
        if self.name == "dirichlet" and (self.alpha is None or self.alpha <= 0):
            raise ValueError(f"dirichlet needs alpha > 0, got {self.alpha}")
        if self.name == "dirichlet" and self.min_partition_size is None:
            raise ValueError("dirichlet needs min_partition_size ≥ 0, got None")
        if self.min_partition_size is not None and self.min_partition_size < 0:
            raise ValueError(f"min_partition_size must be ≥ 0, got {self.min_partition_size}")
        if self.name == "pathological" and (self.classes_per_client is None or self.classes_per_client < 1):
            raise ValueError(f"pathological needs classes_per_client ≥ 1, got {self.classes_per_client}")
        if self.name == "shard" and (self.shards_per_client is None or self.shards_per_client < 1):
            raise ValueError(f"shard needs shards_per_client ≥ 1, got {self.shards_per_client}")
        if self.shard_size is not None and self.shard_size < 1:
            raise ValueError(f"shard_size must be ≥ 1, got {self.shard_size}")


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


def _pathological(spec: PartitionSpec):
    from flwr_datasets.partitioner import PathologicalPartitioner

    return PathologicalPartitioner(
        num_partitions=spec.num_partitions,
        partition_by="label",
        num_classes_per_partition=spec.classes_per_client,
        class_assignment_mode="first-deterministic",
        shuffle=True,
        seed=spec.seed,
    )


def _shard(spec: PartitionSpec):
    from flwr_datasets.partitioner import ShardPartitioner

    return ShardPartitioner(
        num_partitions=spec.num_partitions,
        partition_by="label",
        num_shards_per_partition=spec.shards_per_client,
        shard_size=spec.shard_size,
        shuffle=True,
        seed=spec.seed,
    )


def _natural_id(spec: PartitionSpec):
    from flwr_datasets.partitioner import NaturalIdPartitioner

    return NaturalIdPartitioner(partition_by="group")


_PARTITIONERS: dict[str, Callable[[PartitionSpec], object]] = {
    "iid": _iid,
    "dirichlet": _dirichlet,
    "pathological": _pathological,
    "shard": _shard,
    "natural-id": _natural_id,
}

# Partitioners that take contiguous shards and need the rows shuffled first.
_NEEDS_SHUFFLE = {"iid"}


def available_partitioners() -> list[str]:
    """Names accepted by :func:`create_partitioner`."""
    return list(_PARTITIONERS)


def create_partitioner(spec: PartitionSpec):
    """Create the flwr-datasets partitioner named by ``spec``.

    Returns:
        A new :class:`flwr_datasets.partitioner.Partitioner`, not yet given a data set.
    """
    return _PARTITIONERS[spec.name](spec)


def _check_split(labels: np.ndarray, spec: PartitionSpec, groups: np.ndarray | None) -> None:
    """Raise :class:`ValueError` for a split that cannot be made, before any partitioner runs."""
    n = len(labels)
    if spec.num_partitions > n:
        raise ValueError(f"cannot split {n} examples among {spec.num_partitions} clients")
    if spec.name == "natural-id":
        if groups is None:
            raise ValueError(
                "natural-id needs a data set with natural users (a writer, book or role per row)"
            )
        users = len(np.unique(groups))
        if users != spec.num_partitions:
            raise ValueError(
                f"natural-id gives one client per user: the data has {users} user{'s' * (users != 1)}, "
                f"so the number of clients must be {users}, not {spec.num_partitions} "
                f"(set federation.num-clients = {users})"
            )
    if spec.name == "pathological":
        classes = len(np.unique(labels))
        if spec.classes_per_client > classes:
            raise ValueError(
                f"pathological: {spec.classes_per_client} classes per client, but the data has {classes} "
                "(lower data.classes-per-client)"
            )


def partition(
    labels: np.ndarray, spec: PartitionSpec, *, groups: np.ndarray | None = None
) -> list[np.ndarray]:
    """Split row indices among ``spec.num_partitions`` clients.

    Args:
        labels: integer labels, shape ``(N,)``.
        spec: the split.
        groups: each row's natural user as an int, shape ``(N,)``; required by
            ``natural-id`` (client ``i`` gets the ``i``-th smallest user id).

    Returns:
        One sorted int64 index array per client (``partition_id`` order); the
        arrays are disjoint and together cover ``range(N)``. The same ``spec``
        and labels always give the same split.

    Raises:
        ValueError: if the split is impossible (e.g. more clients than rows, a
            Dirichlet ``min_partition_size`` no draw could satisfy, more classes per
            client than classes, too few shards, or a ``natural-id`` split whose
            client count differs from the number of users).

    Example:
        >>> unused = dict(alpha=None, min_partition_size=None, classes_per_client=None,
        ...               shards_per_client=None, shard_size=None)
        >>> spec = PartitionSpec("iid", num_partitions=2, seed=0, **unused)
        >>> parts = partition(np.repeat(np.arange(2), 5), spec)
        >>> [len(p) for p in parts]
        [5, 5]
    """
    import datasets

    datasets.disable_progress_bars()
    _check_split(labels, spec, groups)
    n = len(labels)
    columns = {"index": np.arange(n, dtype=np.int64), "label": np.asarray(labels, dtype=np.int64)}
    if spec.name == "natural-id":
        columns["group"] = np.asarray(groups, dtype=np.int64)
    from fedsim.partition.quiet import quiet  # imports this module's PartitionSpec for its types only

    table = datasets.Dataset.from_dict(columns)
    if spec.name in _NEEDS_SHUFFLE:
        table = table.shuffle(seed=spec.seed).flatten_indices()
    partitioner = create_partitioner(spec)
    partitioner.dataset = table
    try:
        with quiet(spec):
            parts = [
                np.sort(np.asarray(partitioner.load_partition(pid)["index"], dtype=np.int64))
                for pid in range(spec.num_partitions)
            ]
    except (ValueError, IndexError) as err:
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
