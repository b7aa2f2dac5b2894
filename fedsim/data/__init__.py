"""Data sets: ``load_dataset(spec) -> (train, test)`` as in-memory arrays."""

from fedsim.data.base import ArrayDataset, DataSpec, DataUnavailableError
from fedsim.data.registry import DatasetInfo, available_datasets, dataset_info, load_dataset

__all__ = [
    "ArrayDataset",
    "DataSpec",
    "DataUnavailableError",
    "DatasetInfo",
    "available_datasets",
    "dataset_info",
    "load_dataset",
]
