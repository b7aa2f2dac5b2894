"""Data sets: ``load_dataset(spec) -> (train, test)`` as in-memory arrays."""

from fedsim.data.datasets import ArrayDataset, DataSpec, available_datasets, load_dataset

__all__ = ["ArrayDataset", "DataSpec", "available_datasets", "load_dataset"]
