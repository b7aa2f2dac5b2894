"""Partitioning a training set among clients through flwr-datasets partitioners."""

from fedsim.partition.partitioners import (
    PartitionSpec,
    available_partitioners,
    create_partitioner,
    partition,
    partition_stats,
)

__all__ = [
    "PartitionSpec",
    "available_partitioners",
    "create_partitioner",
    "partition",
    "partition_stats",
]
