"""Data set registry: every data set fedsim can load, by name.

=============  ======  ==================  =================================
name           inputs  natural user        source
=============  ======  ==================  =================================
fashion-mnist  image   none                Debian ``dataset-fashion-mnist``
digits         image   none                scikit-learn ``load_digits``
kjv            text    book (66)           Debian ``bible-kjv``
mnist          image   none                flwr-datasets ``ylecun/mnist``
femnist        image   writer              flwr-datasets ``flwrlabs/femnist``
cifar10        image   none                flwr-datasets ``uoft-cs/cifar10``
shakespeare    text    speaking role       flwr-datasets ``flwrlabs/shakespeare``
=============  ======  ==================  =================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Literal

import numpy as np

from fedsim.data.base import ArrayDataset, DataSpec
from fedsim.data.hub import HUB_FORMATS, load_hub
from fedsim.data.images import load_digits, load_fashion_mnist
from fedsim.data.text import load_kjv


@dataclass(frozen=True)
class DatasetInfo:
    """What a data set is, known without loading it.

    Attributes:
        kind: ``image`` (``(C, H, W)`` floats) or ``text`` (character windows).
        natural_user: what one natural user is (``book``, ``writer``, ``role``),
            or None when the data set has none (``natural-id`` needs one).
        has_test_split: whether it ships a test split; if not, a share of each
            user's data is held out (``test_fraction``).
        hub_id: the Hugging Face Hub data set for online data sets, else None.
        loader: ``loader(spec) -> (train, test)``.
        class_names: each label's name, in label order (image data sets whose
            names are published), or None (text: the vocabulary names them).
    """

    kind: Literal["image", "text"]
    natural_user: str | None
    has_test_split: bool
    hub_id: str | None
    loader: Callable[[DataSpec], tuple[ArrayDataset, ArrayDataset]]
    class_names: tuple[str, ...] | None = None


FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
"""Fashion-MNIST's labels 0-9 (Xiao et al. 2017, https://arxiv.org/abs/1708.07747, Table 1)."""

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
"""CIFAR-10's labels 0-9 (Krizhevsky 2009, https://www.cs.toronto.edu/~kriz/cifar.html)."""

DIGITS = tuple(str(d) for d in range(10))
"""The labels of the handwritten digit data sets (MNIST, scikit-learn's digits): the digits themselves."""


_DATASETS: dict[str, DatasetInfo] = {
    "fashion-mnist": DatasetInfo("image", None, True, None, load_fashion_mnist, FASHION_MNIST_CLASSES),
    "digits": DatasetInfo("image", None, True, None, load_digits, DIGITS),
    "kjv": DatasetInfo("text", "book", False, None, load_kjv),
    **{
        name: DatasetInfo(fmt.kind, user, fmt.has_test_split, fmt.hub_id, partial(load_hub, name), names)
        for name, fmt, user, names in (
            ("mnist", HUB_FORMATS["mnist"], None, DIGITS),
            ("femnist", HUB_FORMATS["femnist"], "writer", None),
            ("cifar10", HUB_FORMATS["cifar10"], None, CIFAR10_CLASSES),
            ("shakespeare", HUB_FORMATS["shakespeare"], "role", None),
        )
    },
}


def available_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`, in registration order (the default, Fashion-MNIST, first)."""
    return list(_DATASETS)


def dataset_info(name: str) -> DatasetInfo:
    """What data set ``name`` is (its kind, natural users, source).

    Raises:
        KeyError: if ``name`` is not registered.
    """
    return _DATASETS[name]


VALIDATION_SEED = 1
"""Seed of the validation draw: the same split for every scenario seed, so trials compare like with like."""


def hold_out_validation(train: ArrayDataset, fraction: float) -> tuple[ArrayDataset, ArrayDataset]:
    """Split ``train`` into ``(rest, validation)``: a fixed random ``fraction`` of its rows, at least one.

    The draw uses its own generator (:data:`VALIDATION_SEED`), so the training
    and test draws of :func:`load_dataset` are those of a run without validation.
    For text windowed from whole texts, a validation window may overlap
    training windows of the same passage (as adjacent windows of a text do).

    Args:
        train: the training set (after ``max_train_examples``), ``N`` ≥ 2 rows.
        fraction: the share to hold out, in ``(0, 1)``; ``round(fraction · N)`` rows,
            at least 1 and at most ``N - 1``.

    Returns:
        ``(rest, validation)``, each in the original row order.

    Raises:
        ValueError: if ``train`` has fewer than two examples.

    Example:
        >>> from dataclasses import fields
        >>> options = dict.fromkeys(f.name for f in fields(DataSpec) if f.name != "dataset")
        >>> train, _ = load_dataset(DataSpec("digits", **options))
        >>> rest, validation = hold_out_validation(train, 0.1)
        >>> len(rest), len(validation)
        (1212, 135)
    """
    if len(train) < 2:
        raise ValueError(f"a validation split needs at least 2 training examples, got {len(train)}")
    size = min(len(train) - 1, max(1, round(fraction * len(train))))
    order = np.random.default_rng(VALIDATION_SEED).permutation(len(train))
    return train.subset(np.sort(order[size:])), train.subset(np.sort(order[:size]))


@lru_cache(maxsize=4)
def load_dataset(spec: DataSpec) -> tuple[ArrayDataset, ArrayDataset]:
    """Load a data set's training and test splits.

    Results are cached per process (Ray workers load each data set once).

    Args:
        spec: which data set, with its options.

    Returns:
        ``(train, test)``, read-only: callers must not modify the arrays. With
        ``spec.validation_fraction``: ``(train without the validation split,
        validation split)``; the test split is not returned (see :func:`hold_out_validation`).

    Raises:
        fedsim.data.DataUnavailableError: if the data set's files are not
            installed or reachable; the message says how to get them.

    Example:
        >>> options = ("data_files", "window_length", "window_stride", "test_fraction",
        ...            "max_train_windows_per_user", "max_test_windows",
        ...            "max_train_examples", "max_test_examples")
        >>> train, test = load_dataset(DataSpec("digits", **dict.fromkeys(options)))  # none applies
        >>> len(train), len(test), train.input_shape
        (1347, 450, (1, 8, 8))
    """
    train, test = _DATASETS[spec.dataset].loader(spec)
    # Fixed draws from one generator (train first, then test): the same subsets for every seed and process.
    # The test draw follows the train draw, so it changes with max-train-examples (kept: the study's data).
    rng = np.random.default_rng(0)
    if spec.max_train_examples is not None and len(train) > spec.max_train_examples:
        train = train.subset(np.sort(rng.choice(len(train), size=spec.max_train_examples, replace=False)))
    if spec.max_test_examples is not None and len(test) > spec.max_test_examples:
        test = test.subset(np.sort(rng.choice(len(test), size=spec.max_test_examples, replace=False)))
    if spec.validation_fraction is not None:
        train, test = hold_out_validation(train, spec.validation_fraction)
    for split in (train, test):
        for array in (split.x, split.y, split.groups):
            if array is not None:
                array.setflags(write=False)
    return train, test
