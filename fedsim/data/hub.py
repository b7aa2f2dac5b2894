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
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from fedsim.data.base import ArrayDataset, DataSpec, DataUnavailableError
from fedsim.data.text import DATA_SEED, encode


@dataclass(frozen=True)
class HubFormat:
    """Where an online data set lives and which columns hold what.

    Attributes:
        hub_id: the Hugging Face Hub data set.
        kind: ``image`` (an image column) or ``text`` (string windows and next characters).
        x_column: the image, or the input window (a string).
        label_column: the class label, or the next character (a string).
        group_column: the natural user (writer, speaking role), or None.
        has_test_split: whether the Hub data set ships a ``test`` split.
    """

    hub_id: str
    kind: Literal["image", "text"]
    x_column: str
    label_column: str
    group_column: str | None = None
    has_test_split: bool = True


HUB_FORMATS: dict[str, HubFormat] = {
    "mnist": HubFormat("ylecun/mnist", "image", "image", "label"),
    "femnist": HubFormat(
        "flwrlabs/femnist", "image", "image", "character", "writer_id", has_test_split=False
    ),
    "cifar10": HubFormat("uoft-cs/cifar10", "image", "img", "label"),
    "shakespeare": HubFormat("flwrlabs/shakespeare", "text", "x", "y", "character_id", has_test_split=False),
}

_BUILDERS = {".parquet": "parquet", ".csv": "csv"}


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


def _local_files_advice(name: str) -> str:
    fmt = HUB_FORMATS[name]
    example = (
        'data-files = { train = "train.parquet", test = "test.parquet" }'
        if HUB_FORMATS[name].has_test_split
        else 'data-files = { train = "train.parquet" }'
    )
    columns = ", ".join(c for c in (fmt.x_column, fmt.label_column, fmt.group_column) if c)
    return (
        f"copy the data set's files ({fmt.hub_id}: parquet or csv with columns {columns}) "
        f"to this machine and name them in the scenario: [data] {example}"
    )


def _read_splits(name: str, spec: DataSpec):
    """The ``train`` and (if present) ``test`` splits as ``datasets.Dataset`` objects."""
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    import datasets
    from flwr_datasets import FederatedDataset

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)  # a failed read is reported once, below
    fmt = HUB_FORMATS[name]
    files = spec.files()
    if files:
        if "train" not in files:
            raise DataUnavailableError(f"{name}: data-files needs a 'train' file, got {sorted(files)}")
        for split, path in files.items():
            if not Path(path).exists():
                raise DataUnavailableError(f"{name}: data-files.{split} not found: {path}")
            if not Path(path).is_file() or Path(path).stat().st_size == 0:
                raise DataUnavailableError(
                    f"{name}: data-files.{split} is not a data file (a folder or empty): {path}"
                )
        builders = {_BUILDERS.get(Path(path).suffix.lower()) for path in files.values()}
        if None in builders or len(builders) != 1:
            raise DataUnavailableError(
                f"{name}: data-files must all be .parquet or all .csv, got {sorted(files.values())}"
            )
        source = f"local files {sorted(files.values())}"
        fds = FederatedDataset(
            dataset=builders.pop(), partitioners={"train": 1}, shuffle=False, data_files=files
        )
    else:
        source = f"the Hugging Face Hub data set {fmt.hub_id}"
        from huggingface_hub import constants

        host = _hub_host()
        if not constants.HF_HUB_OFFLINE and not _hub_reachable(host):
            raise DataUnavailableError(
                f"{name}: cannot reach the Hugging Face Hub ({host[0]}) to download {fmt.hub_id}. "
                f"Without network access, {_local_files_advice(name)} "
                "(or set HF_HUB_OFFLINE=1 to use a copy already in the Hugging Face cache)"
            )
        fds = FederatedDataset(dataset=fmt.hub_id, partitioners={"train": 1}, shuffle=False)
    try:
        train = fds.load_split("train")
        has_test = "test" in files if files else fmt.has_test_split
        test = fds.load_split("test") if has_test else None
    except Exception as err:  # noqa: BLE001 - any failure to read user files or the Hub is bad input
        advice = (
            "each file must be a parquet or csv table with the columns "
            f"{[c for c in (fmt.x_column, fmt.label_column, fmt.group_column) if c]}"
            if files
            else _local_files_advice(name)
        )
        raise DataUnavailableError(
            f"{name}: could not read {source} ({_first_line(err)}); {advice}"
        ) from None
    for split in (train, test):
        if split is None:
            continue
        wanted = [c for c in (fmt.x_column, fmt.label_column, fmt.group_column) if c]
        absent = [c for c in wanted if c not in split.column_names]
        if absent:
            raise DataUnavailableError(
                f"{name}: {source} lacks column(s) {absent}; expected {wanted}, found {split.column_names}"
            )
    return train, test


def _group_ids(values: list, names: list[str]) -> np.ndarray:
    index = {n: i for i, n in enumerate(names)}
    return np.fromiter((index[str(v)] for v in values), dtype=np.int64, count=len(values))


def _images(split, column: str) -> np.ndarray:
    """Decode an image column to uint8 ``(N, C, H, W)``.

    The column may be a ``datasets.Image`` feature (as in the Hub's files) or
    plain ``{"bytes", "path"}`` records of encoded images (as pandas writes them).
    """
    import datasets
    import pyarrow

    if not isinstance(split.features[column], datasets.Image):
        try:
            split = split.cast_column(column, datasets.Image())
        except (TypeError, ValueError, pyarrow.ArrowException) as err:
            raise DataUnavailableError(
                f"column {column!r} holds {split.features[column]}, not images: "
                "expected encoded images (PNG/JPEG bytes), as in the Hub data set's parquet files"
            ) from err
    try:
        images = np.asarray(split.with_format("numpy")[column])
    except (OSError, ValueError) as err:  # undecodable bytes
        raise DataUnavailableError(f"column {column!r}: cannot decode the images ({err})") from err
    if images.dtype == object or images.ndim not in (3, 4):
        raise DataUnavailableError(
            f"column {column!r} does not hold images of one size (csv files cannot hold images: use parquet)"
        )
    return images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)


def _hold_out_per_group(
    groups: np.ndarray, fraction: float, rng: np.random.Generator, *, gap: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Split each group's rows into training and test rows.

    Args:
        groups: the group (user) of each row, shape ``(N,)``.
        fraction: share of each group's rows held out (at least one row of a
            group with two or more).
        rng: draws the held-out rows (images).
        gap: for text windows cut one character apart, in text order: hold out
            the *last* rows of each group, and drop the ``gap`` rows before them
            from training, so no training window overlaps a test window (LEAF
            splits Shakespeare the same way). None draws the rows at random.

    Returns:
        ``(train, test)`` boolean masks, shape ``(N,)``, disjoint.
    """
    train = np.zeros(len(groups), dtype=bool)
    test = np.zeros(len(groups), dtype=bool)
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        take = max(1, round(fraction * len(rows))) if len(rows) >= 2 else 0
        if gap is None:
            held = rng.choice(rows, size=take, replace=False)
            test[held] = True
            train[np.setdiff1d(rows, held)] = True
        else:
            test[rows[len(rows) - take :]] = True
            train[rows[: max(len(rows) - take - gap, 0)]] = True
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

    if fmt.kind == "image":
        xs = [_images(s, fmt.x_column) for s in splits]
        feature = train_rows.features[fmt.label_column]
        ys = [np.asarray(s[fmt.label_column], dtype=np.int64) for s in splits]
        num_classes = getattr(feature, "num_classes", None) or int(max(y.max() for y in ys)) + 1
        vocab = None
    else:
        texts = [list(map(str, s[fmt.x_column])) for s in splits]
        nexts = [list(map(str, s[fmt.label_column])) for s in splits]
        lengths = {len(t) for ts in texts for t in ts}
        if spec.window_length is not None and lengths != {spec.window_length}:
            raise ValueError(
                f"{name}: the files' windows have {sorted(lengths)[:5]} characters, "
                f"but data.window-length is {spec.window_length}; set it to match the files"
            )
        if any(len(n) != 1 for ns in nexts for n in ns):
            raise ValueError(f"{name}: column {fmt.label_column!r} must hold exactly one character per row")
        vocab = "".join(sorted({c for ts in texts + nexts for t in ts for c in t}))
        xs = [encode("".join(ts), vocab).reshape(len(ts), -1) for ts in texts]
        ys = [encode("".join(ns), vocab) for ns in nexts]
        num_classes = len(vocab)
    gs = [_group_ids(s[fmt.group_column], names) for s in splits] if names else [None] * len(splits)

    if test_rows is None:
        if spec.test_fraction is None:
            raise ValueError(f"{name}: no test split; set data.test-fraction or give a test file")
        kept, held = _hold_out_per_group(
            gs[0] if names else np.zeros(len(ys[0]), dtype=np.int64),
            spec.test_fraction,
            rng,
            gap=xs[0].shape[1] if fmt.kind == "text" else None,
        )
        xs, ys = [xs[0][kept], xs[0][held]], [ys[0][kept], ys[0][held]]
        gs = [gs[0][kept], gs[0][held]] if names else [None, None]

    if fmt.kind == "image":
        scaled = [x.astype(np.float32) / 255.0 for x in xs]
        mean = scaled[0].mean(axis=(0, 2, 3), keepdims=True)
        std = scaled[0].std(axis=(0, 2, 3), keepdims=True) + 1e-8
        xs = [(x - mean) / std for x in scaled]
    else:
        keep = np.arange(len(ys[0]))
        if spec.max_train_windows_per_user is not None and names:
            cap = spec.max_train_windows_per_user
            keep = np.sort(
                np.concatenate(
                    [
                        rows if len(rows) <= cap else rng.choice(rows, size=cap, replace=False)
                        for rows in (np.flatnonzero(gs[0] == g) for g in np.unique(gs[0]))
                    ]
                )
            )
        xs[0], ys[0] = xs[0][keep], ys[0][keep]
        gs[0] = gs[0][keep] if names else None
        if spec.max_test_windows is not None and len(ys[1]) > spec.max_test_windows:
            sel = np.sort(rng.choice(len(ys[1]), size=spec.max_test_windows, replace=False))
            xs[1], ys[1] = xs[1][sel], ys[1][sel]
            gs[1] = gs[1][sel] if names else None

    group_names = tuple(names) if names else None
    return tuple(  # type: ignore[return-value]
        ArrayDataset(x, y, num_classes, name, groups=g, group_names=group_names, vocab=vocab)
        for x, y, g in zip(xs, ys, gs, strict=True)
    )
