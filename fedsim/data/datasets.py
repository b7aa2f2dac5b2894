"""Offline data sets, loaded into memory as normalised float32 arrays.

Two loaders exist today, chosen by name through a registry:

* ``fashion-mnist``: the official 60,000/10,000 train/test split read from the
  IDX files of Debian's ``dataset-fashion-mnist`` package
  (``/usr/share/datasets/fashion-mnist``; Xiao et al. 2017,
  https://arxiv.org/abs/1708.07747).
* ``digits``: scikit-learn's ``load_digits`` (1,797 8x8 images, 10 classes);
  it has no official test split, so a fixed stratified 25 % is held out.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

FASHION_MNIST_DIR_ENV = "FEDSIM_FASHION_MNIST_DIR"
"""Environment variable that overrides the Fashion-MNIST IDX directory."""

DEFAULT_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


@dataclass(frozen=True)
class DataSpec:
    """Which data set a run uses.

    Args:
        dataset: registry name, one of :func:`available_datasets`.
    """

    dataset: str

    def __post_init__(self) -> None:
        if self.dataset not in _LOADERS:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose one of {available_datasets()}")


@dataclass(frozen=True)
class ArrayDataset:
    """A labelled data set held in memory.

    Attributes:
        x: inputs, float32, shape ``(N, C, H, W)`` for images.
        y: integer class labels, int64, shape ``(N,)``, values in ``[0, num_classes)``.
        num_classes: number of classes.
        name: data set name, for reports.
    """

    x: np.ndarray
    y: np.ndarray
    num_classes: int
    name: str

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} rows but y has {len(self.y)}")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example, e.g. ``(1, 28, 28)``."""
        return tuple(self.x.shape[1:])

    def subset(self, indices: np.ndarray) -> ArrayDataset:
        """Return the rows at ``indices`` (shape ``(M,)``) as a new data set."""
        return ArrayDataset(self.x[indices], self.y[indices], self.num_classes, self.name)


def _read_idx(path: Path) -> np.ndarray:
    """Read a (gzipped) IDX file into an array of its declared shape.

    The IDX format is LeCun's MNIST format: two zero bytes, a type code (0x08 for
    uint8), the number of dimensions, then one big-endian uint32 size per dimension.

    Raises:
        FileNotFoundError: if ``path`` is missing.
        ValueError: if the header is not an unsigned-byte IDX header.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims} but holds {data.size} bytes")
    return data.reshape(dims)


def _load_fashion_mnist() -> tuple[ArrayDataset, ArrayDataset]:
    root = Path(os.environ.get(FASHION_MNIST_DIR_ENV, DEFAULT_FASHION_MNIST_DIR))
    files = {
        "train-x": "train-images-idx3-ubyte.gz",
        "train-y": "train-labels-idx1-ubyte.gz",
        "test-x": "t10k-images-idx3-ubyte.gz",
        "test-y": "t10k-labels-idx1-ubyte.gz",
    }
    missing = [name for name in files.values() if not (root / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST files missing in {root}: {', '.join(missing)}. "
            "Install them with 'apt-get install dataset-fashion-mnist' "
            f"or point {FASHION_MNIST_DIR_ENV} at a folder holding the IDX files."
        )
    arrays = {key: _read_idx(root / name) for key, name in files.items()}
    # Per-pixel statistics of the training set, as in the torchvision examples.
    mean, std = 0.2860, 0.3530

    def as_dataset(split: str) -> ArrayDataset:
        x = (arrays[f"{split}-x"].astype(np.float32) / 255.0 - mean) / std  # (N, 28, 28)
        y = arrays[f"{split}-y"].astype(np.int64)
        return ArrayDataset(x[:, None, :, :], y, 10, "fashion-mnist")  # (N, 1, 28, 28)

    return as_dataset("train"), as_dataset("test")


def _load_digits() -> tuple[ArrayDataset, ArrayDataset]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / 16.0 - 0.5) / 0.5  # (N, 8, 8), in [-1, 1]
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, stratify=y, random_state=0)
    return (
        ArrayDataset(x_train[:, None], y_train, 10, "digits"),
        ArrayDataset(x_test[:, None], y_test, 10, "digits"),
    )


_LOADERS: dict[str, Callable[[], tuple[ArrayDataset, ArrayDataset]]] = {
    "fashion-mnist": _load_fashion_mnist,
    "digits": _load_digits,
}


def available_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`."""
    return sorted(_LOADERS)


@lru_cache(maxsize=4)
def load_dataset(spec: DataSpec) -> tuple[ArrayDataset, ArrayDataset]:
    """Load a data set's training and test splits.

    Results are cached per process (Ray workers load each data set once).

    Args:
        spec: which data set.

    Returns:
        ``(train, test)``. Callers must not modify the arrays.

    Raises:
        FileNotFoundError: if the data set's files are not installed; the message
            says which package provides them.

    Example:
        >>> train, test = load_dataset(DataSpec("digits"))
        >>> len(train), len(test), train.input_shape
        (1347, 450, (1, 8, 8))
    """
    train, test = _LOADERS[spec.dataset]()
    for split in (train, test):
        split.x.setflags(write=False)
        split.y.setflags(write=False)
    return train, test
