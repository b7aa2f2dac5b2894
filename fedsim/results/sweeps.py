"""A sweep's folder: ``sweep.json`` (the grid and each run's status) beside ``runs/<run id>/``.

``sweep.json`` holds ``name``, ``quick``, ``axes`` (``name``, ``labels``,
``is_key``, ``touches_privacy``), ``reference``, ``runs`` (``run_id``,
``labels``, ``dir``, ``status``: pending | complete | failed, ``error``) and
``status`` (running | complete | incomplete). It is written atomically.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from fedsim.results.run_dir import RunDirError

SWEEP_FILE = "sweep.json"
REPORT_FILES = (
    "report.md",
    "report.html",
    "runs.csv",
    "summary.csv",
    "frontier.png",
    "audit.png",
    "accuracy_rounds.png",
    "tune.json",
)


def check_sweep_dir(out_dir: Path) -> None:
    """Check that a sweep may write to ``out_dir``: missing, empty, or an earlier sweep.

    Raises:
        RunDirError: otherwise.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise RunDirError(f"{out_dir}: exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / SWEEP_FILE).is_file():
        raise RunDirError(
            f"{out_dir}: not empty and not an earlier fedsim sweep (no {SWEEP_FILE}); "
            "choose another --out or empty it"
        )


def write_sweep_manifest(sweep_dir: Path, manifest: dict[str, Any]) -> None:
    """Write ``sweep.json`` atomically (a temporary file, then a rename)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{SWEEP_FILE}.", dir=sweep_dir)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private (0600); sweep.json is an ordinary file
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    os.replace(tmp, sweep_dir / SWEEP_FILE)


def read_sweep_manifest(sweep_dir: Path) -> dict[str, Any]:
    """Read ``sweep.json``.

    Raises:
        RunDirError: if it is missing or not JSON.
    """
    try:
        return json.loads((sweep_dir / SWEEP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise RunDirError(f"{sweep_dir}: not a fedsim sweep (cannot read {SWEEP_FILE}: {err})") from None


def remove_sweep_report(sweep_dir: Path) -> None:
    """Delete the sweep report's files, so that an interrupted sweep shows no stale report."""
    for name in REPORT_FILES:
        (sweep_dir / name).unlink(missing_ok=True)
