"""The in-memory data set type and the spec that names one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class DataUnavailableError(FileNotFoundError):
    """A data set's files are not installed or cannot be reached; the message says how to get them."""


@dataclass(frozen=True)
class DataSpec:
    """Which data set a run uses, and how text is cut into examples.

    Args:
        dataset: registry name, one of :func:`fedsim.data.available_datasets`.
        data_files: for the online (flwr-datasets) data sets only: local copies
            to read instead of the Hugging Face Hub, as ``(split, path)`` pairs,
            e.g. ``(("train", "mnist-train.parquet"), ("test", "mnist-test.parquet"))``;
            parquet or csv, by suffix.
        window_length: for text data sets: characters in each input window
            (LEAF's Shakespeare uses 80, Caldas et al. 2018,
            https://arxiv.org/abs/1812.01097); the label is the next character.
        window_stride: for text data sets built from whole texts (KJV): characters
            between the starts of consecutive windows (1 takes every window, as
            LEAF does; larger values thin every user's windows alike, keeping
            the natural differences in size); None for other data sets.
        test_fraction: for text data sets built from whole texts (KJV): the
            share of each book's verses held out for testing, in ``(0, 0.5]``.
        max_train_windows_per_user: for text data sets: at most this many
            training windows per natural user (a book or a speaking role), drawn
            at random with a fixed seed; None keeps them all.
        max_test_windows: for text data sets: at most this many test windows in
            all, drawn at random with a fixed seed; None keeps them all.
        max_train_examples: any data set: at most this many training examples
            in all (after text windowing), a random draw with a fixed seed, so
            small studies run fast and can overfit; None keeps them all.
        max_test_examples: any data set: at most this many test examples, drawn
            the same way; None keeps them all.
        validation_fraction: if set, in ``(0, 0.5]``: this share of the training
            examples (after ``max_train_examples``), a random draw with a fixed
            seed, is held out as a validation split that takes the test split's
            place (evaluation, the audit's non-members); the clients train on the
            rest and the test split is never returned. Hyper-parameter tuning
            uses it, so that no choice is made on the test set.

    Raises:
        ValueError: for an unknown data set, or options out of range.
    """

    dataset: str
    data_files: tuple[tuple[str, str], ...] | None
    window_length: int | None
    window_stride: int | None
    test_fraction: float | None
    max_train_windows_per_user: int | None
    max_test_windows: int | None
    max_train_examples: int | None
    max_test_examples: int | None
    validation_fraction: float | None = None

    def __post_init__(self) -> None:
        from fedsim.data.registry import available_datasets, dataset_info

        if self.dataset not in available_datasets():
            raise ValueError(f"unknown dataset {self.dataset!r}; choose one of {available_datasets()}")
        info = dataset_info(self.dataset)
        if self.data_files is not None and info.hub_id is None:
            raise ValueError(f"data_files is only for online data sets, not {self.dataset!r}")
        if self.window_length is not None and self.window_length < 1:
            raise ValueError(f"window_length must be ≥ 1, got {self.window_length}")
        if self.window_stride is not None and self.window_stride < 1:
            raise ValueError(f"window_stride must be ≥ 1, got {self.window_stride}")
        for name in ("test_fraction", "validation_fraction"):
            value = getattr(self, name)
            if value is not None and not 0 < value <= 0.5:
                raise ValueError(f"{name} must be in (0, 0.5], got {value}")
        for name in (
            "max_train_windows_per_user",
            "max_test_windows",
            "max_train_examples",
            "max_test_examples",
        ):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be ≥ 1, got {value}")

    def files(self) -> dict[str, str]:
        """``data_files`` as a ``{split: path}`` dict (empty when not given)."""
        return dict(self.data_files or ())


@dataclass(frozen=True)
class ArrayDataset:
    """A labelled data set held in memory.

    Attributes:
        x: inputs. Images: float32, shape ``(N, C, H, W)``. Text: int64 indices
            into ``vocab``, shape ``(N, T)`` (``T`` characters per window).
        y: integer labels, int64, shape ``(N,)``, values in ``[0, num_classes)``;
            for text, the index of the character that follows the window.
        num_classes: number of classes (for text, the vocabulary size).
        name: data set name, for reports.
        groups: the natural user of each row (writer, book, speaking role), int64
            indices into ``group_names``, shape ``(N,)``; None when the data set
            has no natural users.
        group_names: one name per natural user, e.g. ``("Ge", "Exo", ...)``.
        vocab: for text, the characters that indices stand for (``vocab[i]`` is
            the character of index ``i``); None for images.
    """

    x: np.ndarray
    y: np.ndarray
    num_classes: int
    name: str
    groups: np.ndarray | None = None
    group_names: tuple[str, ...] | None = None
    vocab: str | None = None

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} rows but y has {len(self.y)}")
        if (self.groups is None) != (self.group_names is None):
            raise ValueError("groups and group_names go together")
        if self.groups is not None and len(self.groups) != len(self.y):
            raise ValueError(f"groups has {len(self.groups)} rows but y has {len(self.y)}")
        if self.vocab is not None and len(self.vocab) != self.num_classes:
            raise ValueError(f"a vocabulary of {len(self.vocab)} characters needs num_classes to match")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example, e.g. ``(1, 28, 28)`` or ``(80,)``."""
        return tuple(self.x.shape[1:])

    @property
    def vocab_size(self) -> int | None:
        """Number of distinct input tokens for text (None for images)."""
        return None if self.vocab is None else len(self.vocab)

    def subset(self, indices: np.ndarray) -> ArrayDataset:
        """Return the rows at ``indices`` (shape ``(M,)``) as a new data set."""
        return ArrayDataset(
            self.x[indices],
            self.y[indices],
            self.num_classes,
            self.name,
            groups=None if self.groups is None else self.groups[indices],
            group_names=self.group_names,
            vocab=self.vocab,
        )

    def baseline_accuracy(self) -> float:
        """Accuracy of always predicting this set's most frequent label (in ``[0, 1]``).

        The majority-class baseline: for text, always the most frequent
        character (in English prose, the space).

        Example:
            >>> ArrayDataset(np.zeros((4, 1)), np.array([1, 1, 1, 0]), 2, "toy").baseline_accuracy()
            0.75
        """
        if len(self.y) == 0:
            return 0.0
        return float(np.bincount(self.y, minlength=self.num_classes).max() / len(self.y))
