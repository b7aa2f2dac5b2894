"""Next-character prediction on text with natural users (LEAF's Shakespeare task).

The offline corpus is the King James Bible from Debian's ``bible-kjv-text``,
read with the ``bible`` program of package ``bible-kjv``; no text is stored in
this repository. Each of its 66 books is one natural user (as LEAF's Shakespeare
has one user per speaking role; Caldas et al. 2018,
https://arxiv.org/abs/1812.01097, Sec. 3). The task is LEAF's: read a window of
80 characters and predict the next one, over a vocabulary of the characters
that occur in the corpus.

Held-out data is chosen by verse: a share of each book's verses (at least one,
and enough for one window) is set aside with a fixed seed, and test windows are
cut only from those verses, training windows only from the others, so no
held-out verse is ever trained on.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np

from fedsim.data.base import ArrayDataset, DataSpec, DataUnavailableError

BIBLE_PROGRAM = "bible"
"""The reader of Debian's ``bible-kjv`` package."""

KJV_RANGE = "Gen1:1-Rev22:21"
"""Every verse of the KJV, Genesis to Revelation."""

DATA_SEED = 0
"""Fixed seed of the held-out verses and window caps: the data set is the same in every run."""

_VERSE = re.compile(r"^(\d?[A-Za-z]+)(\d+):(\d+) (.*)$")


def read_kjv_verses() -> list[tuple[str, str]]:
    """Read every verse of the KJV with the ``bible`` program.

    Returns:
        ``(book, text)`` pairs in canonical order, e.g. ``("Ge", "In the
        beginning God created the heaven and the earth.")``; 31,102 verses in 66
        books.

    Raises:
        DataUnavailableError: if the program or its text is not installed, or it
            prints nothing the parser understands.
    """
    program = shutil.which(BIBLE_PROGRAM)
    if program is None:
        raise DataUnavailableError(
            "the KJV text needs the 'bible' program and its text: "
            "install them with 'apt-get install bible-kjv' (it pulls in bible-kjv-text)"
        )
    done = subprocess.run([program, "-f", KJV_RANGE], capture_output=True, check=False, timeout=120)
    verses = []
    for line in done.stdout.decode("utf-8", errors="replace").splitlines():
        match = _VERSE.match(line.strip())
        if match:
            verses.append((match.group(1), match.group(4).strip()))
    if done.returncode != 0 or not verses:
        detail = done.stderr.decode("utf-8", errors="replace").strip()[:300]
        raise DataUnavailableError(
            f"'{program} -f {KJV_RANGE}' failed (exit {done.returncode}: {detail or 'no verses printed'}); "
            "reinstall it with 'apt-get install --reinstall bible-kjv bible-kjv-text'"
        )
    return verses


def encode(text: str, vocab: str) -> np.ndarray:
    """Map characters to their indices in ``vocab`` (int64, shape ``(len(text),)``).

    Example:
        >>> encode("abba", "ab").tolist()
        [0, 1, 1, 0]
    """
    lookup = {c: i for i, c in enumerate(vocab)}
    try:
        return np.fromiter((lookup[c] for c in text), dtype=np.int64, count=len(text))
    except KeyError as err:
        raise ValueError(f"character {err.args[0]!r} is not in the vocabulary") from None


def cut_windows(
    ids: np.ndarray,
    *,
    window_length: int,
    stride: int = 1,
    max_windows: int | None,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """The windows of a token sequence that start every ``stride`` tokens, optionally capped.

    Args:
        ids: token indices, shape ``(L,)``.
        window_length: characters per window ``T`` (≥ 1).
        stride: distance between window starts (≥ 1; 1 takes every window, as LEAF does).
        max_windows: keep at most this many of those windows, drawn without
            replacement (kept in text order); None keeps all ``ceil((L - T) / stride)``.
        rng: draws the kept windows.

    Returns:
        ``(x, y)``: windows, int64 ``(M, T)``, and the character after each, int64 ``(M,)``.

    Example:
        >>> x, y = cut_windows(np.arange(5), window_length=3, max_windows=None, rng=np.random.default_rng(0))
        >>> x.tolist(), y.tolist()
        ([[0, 1, 2], [1, 2, 3]], [3, 4])
    """
    count = max(len(ids) - window_length, 0)
    starts = np.arange(0, count, stride)
    if max_windows is not None and len(starts) > max_windows:
        starts = np.sort(rng.choice(starts, size=max_windows, replace=False))
    if count == 0:
        return np.zeros((0, window_length), dtype=np.int64), np.zeros(0, dtype=np.int64)
    views = np.lib.stride_tricks.sliding_window_view(ids, window_length)  # (L - T + 1, T)
    return np.ascontiguousarray(views[starts], dtype=np.int64), ids[starts + window_length].astype(np.int64)


def split_verses(
    verses: list[tuple[str, str]], *, test_fraction: float, min_test_chars: int
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Hold out a share of each book's verses, at random with the fixed :data:`DATA_SEED`.

    Args:
        verses: ``(book, text)`` pairs from :func:`read_kjv_verses`.
        test_fraction: share of each book's verses held out (at least one verse).
        min_test_chars: hold out more verses of a book until its held-out text
            (verses joined by spaces) has at least this many characters.

    Returns:
        Per book, in order: ``(book, train, test)``, where ``train`` and ``test``
        are disjoint sorted int64 arrays of indices into ``verses``.

    Example:
        >>> split = split_verses([("A", "x" * 5)] * 10, test_fraction=0.2, min_test_chars=1)
        >>> [(book, len(train), len(test)) for book, train, test in split]
        [('A', 8, 2)]
    """
    rng = np.random.default_rng(DATA_SEED)
    books = list(dict.fromkeys(book for book, _ in verses))
    out = []
    for book in books:
        rows = np.array([i for i, (name, _) in enumerate(verses) if name == book], dtype=np.int64)
        wanted = max(1, round(test_fraction * len(rows)))
        held, chars = [], 0
        for i in rng.permutation(rows):
            held.append(i)
            chars += len(verses[i][1]) + 1
            if len(held) >= wanted and chars >= min_test_chars:
                break
        test = np.sort(np.array(held, dtype=np.int64))
        out.append((book, np.setdiff1d(rows, test), test))
    return out


def load_kjv(spec: DataSpec) -> tuple[ArrayDataset, ArrayDataset]:
    """The KJV as next-character windows, one natural user per book.

    Args:
        spec: ``window_length`` (T), ``window_stride`` and ``test_fraction`` are
            required; windows start every ``window_stride`` characters;
            ``max_train_windows_per_user`` caps each book's training windows and
            ``max_test_windows`` the whole test set (random draws, fixed seed).

    Returns:
        ``(train, test)``: ``x`` int64 ``(N, T)``, ``y`` int64 ``(N,)``, ``groups``
        the book of each window (66 books, canonical order), ``vocab`` every
        character of the corpus, sorted.

    Raises:
        DataUnavailableError: if ``bible-kjv`` is not installed.
        ValueError: if ``window_length``, ``window_stride`` or ``test_fraction`` is
            missing, or a book's training text is shorter than one window.
    """
    if spec.window_length is None or spec.test_fraction is None:
        raise ValueError("kjv needs window_length and test_fraction")
    if spec.window_stride is None:
        raise ValueError("kjv needs window_stride")
    verses = read_kjv_verses()
    vocab = "".join(sorted({c for _, text in verses for c in text} | {" "}))
    split = split_verses(verses, test_fraction=spec.test_fraction, min_test_chars=spec.window_length + 1)
    books = [book for book, _, _ in split]
    rng = np.random.default_rng(DATA_SEED + 1)
    parts: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {"train": [], "test": []}
    for b, (_, train_rows, test_rows) in enumerate(split):
        for name, rows, cap in (
            ("train", train_rows, spec.max_train_windows_per_user),
            ("test", test_rows, None),
        ):
            ids = encode(" ".join(verses[i][1] for i in rows), vocab)
            x, y = cut_windows(
                ids, window_length=spec.window_length, stride=spec.window_stride, max_windows=cap, rng=rng
            )
            parts[name].append((x, y, np.full(len(y), b, dtype=np.int64)))

    empty = [book for book, (x, _, _) in zip(books, parts["train"], strict=True) if len(x) == 0]
    if empty:
        raise ValueError(
            f"data.window-length {spec.window_length} is longer than the training text of "
            f"{len(empty)} book(s) ({', '.join(empty[:5])}); every book must give a window, "
            "so use a shorter window"
        )

    def stack(split: str, cap: int | None) -> ArrayDataset:
        x, y, groups = (np.concatenate(column) for column in zip(*parts[split], strict=True))
        if cap is not None and len(y) > cap:
            keep = np.sort(rng.choice(len(y), size=cap, replace=False))
            x, y, groups = x[keep], y[keep], groups[keep]
        return ArrayDataset(x, y, len(vocab), "kjv", groups=groups, group_names=tuple(books), vocab=vocab)

    return stack("train", None), stack("test", spec.max_test_windows)
