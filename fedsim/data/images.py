"""Offline image data sets, loaded into memory as normalised float32 arrays.

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
from pathlib import Path

import numpy as np

from fedsim.data.base import ArrayDataset, DataSpec, DataUnavailableError

FASHION_MNIST_DIR_ENV = "FEDSIM_FASHION_MNIST_DIR"
"""Environment variable that overrides the Fashion-MNIST IDX directory."""

DEFAULT_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


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


def load_fashion_mnist(spec: DataSpec) -> tuple[ArrayDataset, ArrayDataset]:
    """Fashion-MNIST's official 60,000/10,000 split, ``x`` float32 ``(N, 1, 28, 28)``.

    Pixels are standardised with the training set's mean 0.2860 and standard
    deviation 0.3530 (as in the torchvision examples). ``spec`` has no options here.

    Raises:
        DataUnavailableError: if the IDX files are missing (names the Debian package).
    """
    root = Path(os.environ.get(FASHION_MNIST_DIR_ENV, DEFAULT_FASHION_MNIST_DIR))
    files = {
        "train-x": "train-images-idx3-ubyte.gz",
        "train-y": "train-labels-idx1-ubyte.gz",
        "test-x": "t10k-images-idx3-ubyte.gz",
        "test-y": "t10k-labels-idx1-ubyte.gz",
    }
    missing = [name for name in files.values() if not (root / name).is_file()]
    if missing:
        raise DataUnavailableError(
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


def load_digits(spec: DataSpec) -> tuple[ArrayDataset, ArrayDataset]:
    """scikit-learn digits, fixed stratified 25 % test split; ``x`` float32 ``(N, 1, 8, 8)`` in [-1, 1].

    ``spec`` has no options here.
    """
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
