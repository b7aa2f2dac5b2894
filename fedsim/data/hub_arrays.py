"""Array steps of :func:`fedsim.data.hub.load_hub`: decoding, held-out rows, scaling, caps."""

from __future__ import annotations

import numpy as np

from fedsim.data.base import DataSpec, DataUnavailableError
from fedsim.data.hub_formats import HubFormat
from fedsim.data.text import encode


def group_ids(values: list, names: list[str]) -> np.ndarray:
    """Map each row's group value to its index in ``names``.

    Args:
        values: the group column's values.
        names: the sorted group names (as strings).

    Returns:
        int64 group indices, shape ``(N,)``.
    """
    index = {n: i for i, n in enumerate(names)}
    return np.fromiter((index[str(v)] for v in values), dtype=np.int64, count=len(values))


def decode_images(split, column: str) -> np.ndarray:
    """Decode an image column to uint8 ``(N, C, H, W)``.

    The column may be a ``datasets.Image`` feature (as in the Hub's files) or
    plain ``{"bytes", "path"}`` records of encoded images (as pandas writes them).

    Args:
        split: a ``datasets.Dataset``.
        column: the image column.

    Returns:
        The images, uint8 ``(N, C, H, W)``.

    Raises:
        DataUnavailableError: if the column does not hold decodable images of one size.
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
        decoded = np.asarray(split.with_format("numpy")[column])
    except (OSError, ValueError) as err:  # undecodable bytes
        raise DataUnavailableError(f"column {column!r}: cannot decode the images ({err})") from err
    if decoded.dtype == object or decoded.ndim not in (3, 4):
        raise DataUnavailableError(
            f"column {column!r} does not hold images of one size (csv files cannot hold images: use parquet)"
        )
    return decoded[:, None] if decoded.ndim == 3 else decoded.transpose(0, 3, 1, 2)


def hold_out_per_group(
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


def standardise(xs: list[np.ndarray]) -> list[np.ndarray]:
    """Scale uint8 images to ``[0, 1]`` and standardise per channel with the first split's statistics.

    Args:
        xs: uint8 images ``(N, C, H, W)``, training split first.

    Returns:
        float32 images, in the same order.
    """
    scaled = [x.astype(np.float32) / 255.0 for x in xs]
    mean = scaled[0].mean(axis=(0, 2, 3), keepdims=True)
    std = scaled[0].std(axis=(0, 2, 3), keepdims=True) + 1e-8
    return [(x - mean) / std for x in scaled]


def capped_rows_per_group(groups: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Rows to keep so that no group has more than ``cap`` rows (drawn at random).

    Args:
        groups: the group of each row, shape ``(N,)``.
        cap: the most rows kept per group.
        rng: draws the kept rows of larger groups.

    Returns:
        Sorted row indices.
    """
    return np.sort(
        np.concatenate(
            [
                rows if len(rows) <= cap else rng.choice(rows, size=cap, replace=False)
                for rows in (np.flatnonzero(groups == g) for g in np.unique(groups))
            ]
        )
    )


def image_arrays(fmt: HubFormat, splits) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """Decode the images and labels of each split.

    Args:
        fmt: the data set's format (``kind`` ``image``).
        splits: ``datasets.Dataset`` objects, training split first.

    Returns:
        ``(xs, ys, num_classes)``: uint8 images ``(N, C, H, W)`` and int64 labels per split.

    Raises:
        DataUnavailableError: if the image column does not hold decodable images.
    """
    xs = [decode_images(s, fmt.x_column) for s in splits]
    feature = splits[0].features[fmt.label_column]
    ys = [np.asarray(s[fmt.label_column], dtype=np.int64) for s in splits]
    num_classes = getattr(feature, "num_classes", None) or int(max(y.max() for y in ys)) + 1
    return xs, ys, num_classes


def text_arrays(name: str, fmt: HubFormat, spec: DataSpec, splits):
    """Encode the text windows and next characters of each split.

    Args:
        name: the data set's name, for messages.
        fmt: the data set's format (``kind`` ``text``).
        spec: its ``window_length`` (if set) must equal the files' window length.
        splits: ``datasets.Dataset`` objects, training split first.

    Returns:
        ``(xs, ys, vocab)``: int64 windows ``(N, T)`` and next characters ``(N,)``
        per split, over ``vocab``, the sorted characters of all splits.

    Raises:
        ValueError: if windows do not have ``window_length`` characters, or a
            label is not exactly one character.
    """
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
    return xs, ys, vocab


def hold_out(name: str, fmt: HubFormat, spec: DataSpec, arrays, has_groups: bool, rng):
    """Split the only (training) split into training and test rows by ``test_fraction``.

    Args:
        name: the data set's name, for messages.
        fmt: the data set's format.
        spec: its ``test_fraction``.
        arrays: ``(xs, ys, gs)``, one entry each (the training split).
        has_groups: whether ``gs`` holds group indices (else None).
        rng: draws held-out image rows.

    Returns:
        ``(xs, ys, gs)`` with two entries each: training and test.

    Raises:
        ValueError: if ``test_fraction`` is not set.
    """
    xs, ys, gs = arrays
    if spec.test_fraction is None:
        raise ValueError(f"{name}: no test split; set data.test-fraction or give a test file")
    kept, held = hold_out_per_group(
        gs[0] if has_groups else np.zeros(len(ys[0]), dtype=np.int64),
        spec.test_fraction,
        rng,
        gap=xs[0].shape[1] if fmt.kind == "text" else None,
    )
    xs, ys = [xs[0][kept], xs[0][held]], [ys[0][kept], ys[0][held]]
    gs = [gs[0][kept], gs[0][held]] if has_groups else [None, None]
    return xs, ys, gs


def cap_windows(spec: DataSpec, arrays, has_groups: bool, rng) -> None:
    """Cap the text windows in place: training windows per user, and test windows in all.

    Args:
        spec: its ``max_train_windows_per_user`` and ``max_test_windows``.
        arrays: ``(xs, ys, gs)``, training and test entries each; changed in place.
        has_groups: whether ``gs`` holds group indices (else None).
        rng: draws the kept windows.
    """
    xs, ys, gs = arrays
    keep = np.arange(len(ys[0]))
    if spec.max_train_windows_per_user is not None and has_groups:
        keep = capped_rows_per_group(gs[0], spec.max_train_windows_per_user, rng)
    xs[0], ys[0] = xs[0][keep], ys[0][keep]
    gs[0] = gs[0][keep] if has_groups else None
    if spec.max_test_windows is not None and len(ys[1]) > spec.max_test_windows:
        sel = np.sort(rng.choice(len(ys[1]), size=spec.max_test_windows, replace=False))
        xs[1], ys[1] = xs[1][sel], ys[1][sel]
        gs[1] = gs[1][sel] if has_groups else None
