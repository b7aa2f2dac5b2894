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

``summary.json``'s layout is :mod:`fedsim.results.summary_json`'s; the checks of
a folder and the atomic writes are :mod:`fedsim.results.run_dir`'s.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import tomli_w

from fedsim.results.records import ClientRecord, RoundRecord, RunResult, RunSummary
from fedsim.results.run_dir import (
    CHECKPOINT_FILE,
    COMPLETE,
    PROGRESS_FILES,
    RUN_FILES,
    TRACKING_DIR,
    RunDirError,
    check_writable_run_dir,
    complete_summary,
    is_progress_dir,
    replace_file,
    write_csv,
    write_records,
)
from fedsim.results.summary_json import summary_from_json, summary_to_json


def write_progress(run_dir: Path, *, scenario: dict[str, Any], rounds: list[RoundRecord]) -> None:
    """Write a run's progress after a round: ``rounds.csv`` (and ``scenario.toml`` at its first), atomically.

    An earlier complete run in ``run_dir`` (which ``fedsim run --out`` may replace)
    is removed first, so it is kept if the new run fails before its first round.

    Args:
        run_dir: the run's folder (created if missing).
        scenario: the resolved scenario (kebab-case TOML dict).
        rounds: the rounds completed so far, round 0 first.
    """
    if complete_summary(run_dir) is not None:  # an earlier run: removed, but not this run's tracking store
        for entry in run_dir.iterdir():
            if entry.name != TRACKING_DIR:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
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
        summary = {**summary_to_json(result.summary), "status": COMPLETE}
        (tmp / "summary.json").write_text(
            json.dumps(summary, indent=2, allow_nan=False) + "\n", encoding="utf-8"
        )
        if (out_dir / TRACKING_DIR).is_dir():  # the run's tracking store (open) moves with the run
            (out_dir / TRACKING_DIR).rename(tmp / TRACKING_DIR)
        old = None
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            out_dir.rename(old)
        tmp.rename(out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        if (tmp / TRACKING_DIR).is_dir() and not (out_dir / TRACKING_DIR).exists() and out_dir.is_dir():
            (tmp / TRACKING_DIR).rename(out_dir / TRACKING_DIR)  # the run's open tracking store stays
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


def _read_records(run_dir: Path, cls: type, name: str) -> list[Any]:
    """The dataclass records of type ``cls`` in the CSV file ``run_dir / name`` (:func:`write_records`).

    A file written before fedsim added a column (``rounds.csv`` before ``test_examples``)
    is read too: the missing trailing columns take their field's default.

    Raises:
        RunDirError: if its columns are not ``cls``'s fields (or a prefix of them ending
            after the last field without a default), or a row is malformed.
    """
    kinds = {
        f.name: (int if "int" in str(f.type) else float if "float" in str(f.type) else str)
        for f in fields(cls)
    }
    required = max(
        i + 1 for i, f in enumerate(fields(cls)) if f.default is MISSING and f.default_factory is MISSING
    )
    with (run_dir / name).open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        if len(columns) < required or columns != list(kinds)[: len(columns)]:
            raise RunDirError(f"{run_dir / name}: columns {reader.fieldnames} are not {list(kinds)}")
        rows = list(reader)
    try:
        return [cls(**{k: _parse(v, kinds[k]) for k, v in row.items()}) for row in rows]
    except (TypeError, ValueError) as err:
        raise RunDirError(f"{run_dir / name}: malformed row ({err})") from None


def _read_summary(run_dir: Path) -> RunSummary:
    """The typed summary of ``run_dir/summary.json``.

    Raises:
        RunDirError: if it is unreadable, does not mark the run complete, or lacks a figure.
    """
    summary = complete_summary(run_dir)
    if summary is None:
        raise RunDirError(f"{run_dir}: summary.json is unreadable or does not mark the run complete")
    try:
        return summary_from_json(summary)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise RunDirError(f"{run_dir / 'summary.json'}: malformed ({err})") from None


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
    summary = _read_summary(run_dir)
    try:
        return RunResult(
            summary=summary,
            rounds=_read_records(run_dir, RoundRecord, "rounds.csv"),
            clients=_read_records(run_dir, ClientRecord, "clients.csv"),
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


__all__ = [
    "CHECKPOINT_FILE",
    "COMPLETE",
    "PROGRESS_FILES",
    "RUN_FILES",
    "RunDirError",
    "check_writable_run_dir",
    "complete_summary",
    "is_progress_dir",
    "load_run",
    "replace_file",
    "save_run",
    "write_csv",
    "write_progress",
    "write_records",
]
