"""A run folder on disk: which files make a complete run or a run in progress, atomic writes, CSV files.

:mod:`fedsim.results.store` writes and reads the files themselves; this module
only checks folders and writes files safely.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any

RUN_FILES = ("scenario.toml", "rounds.csv", "clients.csv", "partition.csv", "summary.json")
"""The files of a complete run."""
CHECKPOINT_FILE = "checkpoint.pt"
PROGRESS_FILES = ("scenario.toml", "rounds.csv", CHECKPOINT_FILE)
"""The files of a run in progress."""
TRACKING_DIR = "tracking"
"""The folder of a run (or sweep) that holds its local tracking stores (MLflow's, TensorBoard's events):
kept when the run's files are replaced, since the run's trackers write to it (:mod:`fedsim.tracking`)."""
COMPLETE = "complete"
"""``summary.json``'s ``status`` once the run is complete (written last)."""


class RunDirError(ValueError):
    """A run directory that cannot be written or read."""


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "inf" if math.isinf(value) else repr(value)
    return str(value)


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    """Write a CSV file: ``header``, then one line per row (None as empty, floats exactly)."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows([[_cell(v) for v in row] for row in rows])


def write_records(path: Path, cls: type, records: list) -> None:
    """Write dataclass ``records`` of type ``cls`` as CSV: one column per field, one row per record."""
    names = [f.name for f in fields(cls)]
    write_csv(path, names, [[getattr(r, n) for n in names] for r in records])


def complete_summary(run_dir: Path) -> dict[str, Any] | None:
    """The JSON of ``run_dir/summary.json`` if it marks the run complete, else None (never raises).

    A check of the folder; :func:`fedsim.results.load_run` reads the typed summary.
    """
    try:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) and summary.get("status") == COMPLETE else None


def _progress_names(run_dir: Path) -> set[str] | None:
    """The progress files in ``run_dir``, or None if it holds anything else or is not a directory.

    Temporary files of a write that was cut off are left out, and deleted.
    """
    if not run_dir.is_dir():
        return None
    names = set()
    for path in run_dir.iterdir():
        if any(path.name.startswith(f".{name}.") for name in PROGRESS_FILES) and path.is_file():
            path.unlink(missing_ok=True)  # a write that was cut off (replace_file)
        elif path.name in PROGRESS_FILES:
            names.add(path.name)
        elif path.name == TRACKING_DIR and path.is_dir():
            continue
        else:
            return None
    return names


def is_progress_dir(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds an interrupted run that can be resumed: progress files with a checkpoint."""
    names = _progress_names(Path(run_dir))
    return names is not None and CHECKPOINT_FILE in names


def check_writable_run_dir(out_dir: Path, *, progress: bool = False) -> None:
    """Check, before a run starts, that its results can be written to ``out_dir``.

    ``out_dir`` may be missing, empty, or a complete earlier fedsim run (which is
    replaced whole); with ``progress``, also a run in progress (the run being
    resumed or finished). Its parent must be writable.

    Raises:
        RunDirError: if ``out_dir`` is a file, a non-empty directory that is not
            a complete fedsim run (an interrupted one is named, with how to resume it),
            or its parent cannot be created or written.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise RunDirError(f"{out_dir}: exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and complete_summary(out_dir) is None:
        names = _progress_names(out_dir)
        if names is not None and (progress or CHECKPOINT_FILE not in names):
            return  # this run's progress, or a run cut off before its first checkpoint (replaced)
        if names is not None:
            raise RunDirError(
                f"{out_dir}: holds an interrupted run; continue it with 'fedsim run --resume {out_dir}', "
                "or choose another --out or delete it"
            )
        raise RunDirError(
            f"{out_dir}: not empty and not a complete fedsim run (no summary.json marked complete); "
            "choose another --out or empty it"
        )
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.mkdtemp(prefix=f".{out_dir.name}.check-", dir=out_dir.parent)
    except OSError as err:
        raise RunDirError(f"{out_dir}: cannot write here ({err.strerror or err})") from None
    shutil.rmtree(probe, ignore_errors=True)


def replace_file(path: Path, write) -> None:
    """Write ``path`` atomically and durably.

    ``write(tmp)`` fills a temporary sibling ``.<name>.XXXX``, which is flushed
    to disk (fsync) and renamed over ``path``; the folder is then flushed too.
    A crash leaves the old file or the new one, never a part of either.

    Args:
        path: the file to replace.
        write: ``write(tmp_path)`` writes the new contents.
    """
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        tmp.chmod(0o644)
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
