"""Online data sets through flwr-datasets, or their local parquet/csv copies.

Each is read with :class:`flwr_datasets.FederatedDataset` (which passes
``data_files`` on to Hugging Face ``datasets.load_dataset``), so a run reads
either the Hub data set or, with ``data-files``, local copies of it in the same
columns. Nothing is downloaded when ``data-files`` is given.

=============  =====================  =================================  ===========
name           Hub data set           columns                            natural user
=============  =====================  =================================  ===========
mnist          ``ylecun/mnist``       image, label                       none
femnist        ``flwrlabs/femnist``   image, character, writer_id        writer
cifar10        ``uoft-cs/cifar10``    img, label                         none
shakespeare    ``flwrlabs/shakespeare``  x (80 characters), y, character_id  speaking role
=============  =====================  =================================  ===========

FEMNIST and Shakespeare ship only a ``train`` split (LEAF, Caldas et al. 2018,
https://arxiv.org/abs/1812.01097); without a ``test`` file, ``test_fraction`` of
each user's rows is held out: at random with a fixed seed for images, and for
text the last rows of each role, with one window's worth of rows before them
left out so that no training window overlaps a test window.
"""

from __future__ import annotations

import os

import numpy as np

from fedsim.data.base import ArrayDataset, DataSpec, DataUnavailableError
from fedsim.data.hub_arrays import cap_windows, group_ids, hold_out, image_arrays, standardise, text_arrays
from fedsim.data.hub_files import local_builder
from fedsim.data.hub_formats import HUB_FORMATS, HubFormat
from fedsim.data.text import DATA_SEED

__all__ = ["HUB_FORMATS", "HubFormat", "load_hub"]


def _hub_host() -> tuple[str, int]:
    """Host and port of the Hub endpoint ``huggingface_hub`` uses (``HF_ENDPOINT`` honoured)."""
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    url = urlsplit(constants.ENDPOINT)
    return url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)


def _hub_reachable(host: tuple[str, int], timeout_s: float = 3.0) -> bool:
    """Whether a TCP connection to ``host`` opens within ``timeout_s`` seconds."""
    import socket

    try:
        with socket.create_connection(host, timeout=timeout_s):
            return True
    except OSError:
        return False


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:200] if text else ''}"


def _columns(fmt: HubFormat) -> list[str]:
    """The columns a data set's files must have: input, label and (if any) group."""
    return [c for c in (fmt.x_column, fmt.label_column, fmt.group_column) if c]


def _local_files_advice(name: str) -> str:
    fmt = HUB_FORMATS[name]
    example = (
        'data-files = { train = "train.parquet", test = "test.parquet" }'
        if HUB_FORMATS[name].has_test_split
        else 'data-files = { train = "train.parquet" }'
    )
    columns = ", ".join(_columns(fmt))
    return (
        f"copy the data set's files ({fmt.hub_id}: parquet or csv with columns {columns}) "
        f"to this machine and name them in the scenario: [data] {example}"
    )


def _federated_dataset_class():
    """Import ``flwr_datasets.FederatedDataset`` with telemetry, progress bars and log noise off.

    Returns:
        The ``FederatedDataset`` class.
    """
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    import datasets
    from flwr_datasets import FederatedDataset

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)  # a failed read is reported once, below
    return FederatedDataset


def _open_hub(name: str, federated_dataset):
    """Open the Hub data set, failing fast if the Hub cannot be reached.

    Args:
        name: one of :data:`HUB_FORMATS`.
        federated_dataset: the ``flwr_datasets.FederatedDataset`` class.

    Returns:
        ``(fds, source)``: the ``FederatedDataset`` and a description for messages.

    Raises:
        DataUnavailableError: if the Hub is not reachable and ``HF_HUB_OFFLINE`` is not set.
    """
    from huggingface_hub import constants

    fmt = HUB_FORMATS[name]
    source = f"the Hugging Face Hub data set {fmt.hub_id}"
    host = _hub_host()
    if not constants.HF_HUB_OFFLINE and not _hub_reachable(host):
        raise DataUnavailableError(
            f"{name}: cannot reach the Hugging Face Hub ({host[0]}) to download {fmt.hub_id}. "
            f"Without network access, {_local_files_advice(name)} "
            "(or set HF_HUB_OFFLINE=1 to use a copy already in the Hugging Face cache)"
        )
    return federated_dataset(dataset=fmt.hub_id, partitioners={"train": 1}, shuffle=False), source


def _load_splits(name: str, fds, files: dict[str, str], source: str):
    """Read the ``train`` and (if present) ``test`` splits.

    Args:
        name: one of :data:`HUB_FORMATS`.
        fds: the opened ``FederatedDataset``.
        files: the local files (empty for the Hub data set).
        source: a description of where the data come from, for messages.

    Returns:
        ``(train, test)`` ``datasets.Dataset`` objects; ``test`` is None without a test split.

    Raises:
        DataUnavailableError: if reading fails for any reason.
    """
    fmt = HUB_FORMATS[name]
    try:
        train = fds.load_split("train")
        has_test = "test" in files if files else fmt.has_test_split
        test = fds.load_split("test") if has_test else None
    except Exception as err:  # noqa: BLE001 - any failure to read user files or the Hub is bad input
        advice = (
            f"each file must be a parquet or csv table with the columns {_columns(fmt)}"
            if files
            else _local_files_advice(name)
        )
        raise DataUnavailableError(
            f"{name}: could not read {source} ({_first_line(err)}); {advice}"
        ) from None
    return train, test


def _check_columns(name: str, source: str, splits) -> None:
    """Check that every split has the data set's columns.

    Args:
        name: one of :data:`HUB_FORMATS`.
        source: a description of where the data come from, for messages.
        splits: ``datasets.Dataset`` objects, or None for an absent split.

    Raises:
        DataUnavailableError: if a split lacks a column.
    """
    wanted = _columns(HUB_FORMATS[name])
    for split in splits:
        if split is None:
            continue
        absent = [c for c in wanted if c not in split.column_names]
        if absent:
            raise DataUnavailableError(
                f"{name}: {source} lacks column(s) {absent}; expected {wanted}, found {split.column_names}"
            )


def _read_splits(name: str, spec: DataSpec):
    """Read the ``train`` and (if present) ``test`` splits as ``datasets.Dataset`` objects.

    Args:
        name: one of :data:`HUB_FORMATS`.
        spec: its ``data_files`` name local copies; without them the Hub data set is read.

    Returns:
        ``(train, test)``; ``test`` is None without a test split.

    Raises:
        DataUnavailableError: if the files or the Hub cannot be read, or columns are absent.
    """
    federated_dataset = _federated_dataset_class()
    files = spec.files()
    if files:
        source = f"local files {sorted(files.values())}"
        builder = local_builder(name, files)
        fds = federated_dataset(dataset=builder, partitioners={"train": 1}, shuffle=False, data_files=files)
    else:
        fds, source = _open_hub(name, federated_dataset)
    train, test = _load_splits(name, fds, files, source)
    _check_columns(name, source, (train, test))
    return train, test


def load_hub(name: str, spec: DataSpec) -> tuple[ArrayDataset, ArrayDataset]:
    """Load an online data set (or its local copies) into memory.

    Images are scaled to ``[0, 1]`` and standardised per channel with the
    training split's mean and standard deviation. Text windows are encoded over
    the sorted characters of both splits.

    Args:
        name: one of :data:`HUB_FORMATS`.
        spec: ``data_files`` (local copies), ``test_fraction`` (required when
            there is no test split), and for text ``window_length`` (must equal
            the files' window length), ``max_train_windows_per_user`` and
            ``max_test_windows``.

    Returns:
        ``(train, test)`` as :class:`ArrayDataset`; images ``(N, C, H, W)``
        float32, text ``(N, T)`` int64; ``groups`` set when the data set has
        natural users.

    Raises:
        DataUnavailableError: if the Hub cannot be reached (the message says how
            to use local files), the files are missing, or columns are absent.
        ValueError: if there is no test split and no ``test_fraction``, or text
            windows do not have ``window_length`` characters.
    """
    fmt = HUB_FORMATS[name]
    train_rows, test_rows = _read_splits(name, spec)
    rng = np.random.default_rng(DATA_SEED)
    splits = [train_rows] if test_rows is None else [train_rows, test_rows]
    names = sorted({str(v) for s in splits for v in s[fmt.group_column]}) if fmt.group_column else None

    vocab = None
    if fmt.kind == "image":
        xs, ys, num_classes = image_arrays(fmt, splits)
    else:
        xs, ys, vocab = text_arrays(name, fmt, spec, splits)
        num_classes = len(vocab)
    gs = [group_ids(s[fmt.group_column], names) for s in splits] if names else [None] * len(splits)

    if test_rows is None:
        xs, ys, gs = hold_out(name, fmt, spec, (xs, ys, gs), bool(names), rng)
    if fmt.kind == "image":
        xs = standardise(xs)
    else:
        cap_windows(spec, (xs, ys, gs), bool(names), rng)

    group_names = tuple(names) if names else None
    return tuple(  # type: ignore[return-value]
        ArrayDataset(x, y, num_classes, name, groups=g, group_names=group_names, vocab=vocab)
        for x, y, g in zip(xs, ys, gs, strict=True)
    )
