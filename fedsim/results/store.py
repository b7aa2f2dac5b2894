"""Saving and loading a run directory.

A complete run directory holds::

    scenario.toml     the resolved scenario (every default filled in)
    rounds.csv        one row per round (RoundRecord fields)
    clients.csv       one row per client (ClientRecord fields)
    partition.csv     label counts per client (client, then one column per class)
    summary.json      headline figures; written last, with "status": "complete"

Files are written to a temporary sibling directory which then replaces the
target, so a crash never leaves a half-written run that looks complete.

While a run trains, its directory holds its progress instead, each file
replaced atomically after every round (:func:`write_progress`)::

    scenario.toml     the resolved scenario
    rounds.csv        the rounds completed so far
    checkpoint.pt     what ``fedsim run --resume`` continues from (fedsim.simulation.checkpoint)

and no ``summary.json``, so it is never taken for a complete run.
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

import tomli_w

from fedsim.results.records import ClientRecord, RoundRecord, RunResult

RUN_FILES = ("scenario.toml", "rounds.csv", "clients.csv", "partition.csv", "summary.json")
CHECKPOINT_FILE = "checkpoint.pt"
PROGRESS_FILES = ("scenario.toml", "rounds.csv", CHECKPOINT_FILE)
COMPLETE = "complete"


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
    """The run's summary if ``run_dir/summary.json`` marks it complete, else None (never raises)."""
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


def _json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (a diverged loss, an infinite ε) as None: JSON has neither."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


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


def write_progress(run_dir: Path, *, scenario: dict[str, Any], rounds: list[RoundRecord]) -> None:
    """Write a run's progress after a round: ``rounds.csv`` (and ``scenario.toml`` at its first), atomically.

    An earlier complete run in ``run_dir`` (which ``fedsim run --out`` may replace)
    is removed first, so it is kept if the new run fails before its first round.

    Args:
        run_dir: the run's folder (created if missing).
        scenario: the resolved scenario (kebab-case TOML dict).
        rounds: the rounds completed so far, round 0 first.
    """
    if complete_summary(run_dir) is not None:
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / CHECKPOINT_FILE).exists():  # this run's first round: its scenario replaces any other
        replace_file(
            run_dir / "scenario.toml", lambda p: p.write_text(tomli_w.dumps(scenario), encoding="utf-8")
        )
    replace_file(run_dir / "rounds.csv", lambda p: write_records(p, RoundRecord, rounds))


def save_run(result: RunResult, out_dir: str | Path) -> Path:
    """Write ``result`` to ``out_dir`` atomically.

    Args:
        result: the run.
        out_dir: the run directory; an earlier fedsim run there, or this run's
            progress (:func:`write_progress`), is replaced.

    Returns:
        ``out_dir`` as a Path.

    Raises:
        RunDirError: if ``out_dir`` is not a replaceable run directory.
    """
    out_dir = Path(out_dir)
    check_writable_run_dir(out_dir, progress=True)  # again: the folder may have changed while the run trained
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private (0700); a run folder is ordinary
    try:
        (tmp / "scenario.toml").write_text(tomli_w.dumps(result.scenario), encoding="utf-8")
        write_records(tmp / "rounds.csv", RoundRecord, result.rounds)
        write_records(tmp / "clients.csv", ClientRecord, result.clients)
        num_classes = len(result.label_counts[0]) if result.label_counts else 0
        write_csv(
            tmp / "partition.csv",
            ["client"] + [f"class_{k}" for k in range(num_classes)],
            [[i, *counts] for i, counts in enumerate(result.label_counts)],
        )
        summary = _json_safe({**result.summary, "status": COMPLETE})
        (tmp / "summary.json").write_text(
            json.dumps(summary, indent=2, allow_nan=False) + "\n", encoding="utf-8"
        )
        old = None
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            out_dir.rename(old)
        tmp.rename(out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _parse(value: str, kind: type) -> Any:
    if value == "":
        return None
    if kind is int:
        return int(value)
    if kind is float:
        return float(value)
    return value


def load_run(run_dir: str | Path) -> RunResult:
    """Read a complete run directory written by :func:`save_run`.

    Raises:
        RunDirError: if a file is missing or malformed, or ``summary.json`` does
            not say the run is complete.
    """
    import tomllib

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: not a directory")
    missing = [name for name in RUN_FILES if not (run_dir / name).is_file()]
    if missing:
        raise RunDirError(f"{run_dir}: not a complete fedsim run (missing {', '.join(missing)})")
    summary = complete_summary(run_dir)
    if summary is None:
        raise RunDirError(f"{run_dir}: summary.json is unreadable or does not mark the run complete")

    def records(cls: type, name: str) -> list[Any]:
        kinds = {
            f.name: (int if "int" in str(f.type) else float if "float" in str(f.type) else str)
            for f in fields(cls)
        }
        with (run_dir / name).open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames != list(kinds):
                raise RunDirError(f"{run_dir / name}: columns {reader.fieldnames} are not {list(kinds)}")
            rows = list(reader)
        try:
            return [cls(**{k: _parse(v, kinds[k]) for k, v in row.items()}) for row in rows]
        except (TypeError, ValueError) as err:
            raise RunDirError(f"{run_dir / name}: malformed row ({err})") from None

    try:
        return RunResult(
            summary=summary,
            rounds=records(RoundRecord, "rounds.csv"),
            clients=records(ClientRecord, "clients.csv"),
            scenario=tomllib.loads((run_dir / "scenario.toml").read_text(encoding="utf-8")),
            label_counts=[
                [int(v) for k, v in row.items() if k != "client"]
                for row in _read_csv(run_dir / "partition.csv")
            ],
        )
    except RunDirError:
        raise
    except ValueError as err:
        raise RunDirError(f"{run_dir}: malformed run file ({err})") from None
