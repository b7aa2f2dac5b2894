"""Each client's training examples, loaded once per Ray worker process and cached.

Client ``k`` holds shard ``k`` of the partitioner's split of the training set,
followed by the input canaries it holds (the canary audit), if any.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from fedsim.audit.input_canaries import InputCanaries
from fedsim.audit.shadow import concatenate_datasets
from fedsim.data import ArrayDataset, DataSpec, load_dataset
from fedsim.partition import PartitionSpec, partition


@lru_cache(maxsize=4)
def client_partitions(data: DataSpec, split: PartitionSpec) -> tuple[np.ndarray, ...]:
    """Index arrays of every client's shard (cached per process)."""
    train_set, _ = load_dataset(data)
    return tuple(partition(train_set.y, split, groups=train_set.groups))


@lru_cache(maxsize=1024)
def client_shard(data: DataSpec, split: PartitionSpec, partition_id: int) -> ArrayDataset:
    """The training examples of client ``partition_id`` (copied once per process, then cached)."""
    train_set, _ = load_dataset(data)
    return train_set.subset(client_partitions(data, split)[partition_id])


@lru_cache(maxsize=1024)
def training_shard(
    data: DataSpec, split: PartitionSpec, partition_id: int, canaries: InputCanaries | None
) -> ArrayDataset:
    """Client ``partition_id``'s shard, followed by the input canaries it holds (cached per process)."""
    shard = client_shard(data, split, partition_id)
    held = canaries.held_by(partition_id, load_dataset(data)[1]) if canaries is not None else None
    return shard if held is None else concatenate_datasets(shard, held)
