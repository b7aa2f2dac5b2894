"""The tracking backends by name, and one run's trackers together (:class:`Tracking`)."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fedsim.tracking.base import TRACKING_DIR, RunInfo, Tracker, TrackingSpec, flatten, numbers
from fedsim.tracking.mlflow_tracker import MlflowTracker, tracking_uri
from fedsim.tracking.tensorboard_tracker import TensorBoardTracker

TRACKERS: dict[str, Callable[[RunInfo, TrackingSpec], Tracker]] = {
    "mlflow": lambda info, spec: MlflowTracker(
        info, uri=tracking_uri(spec.mlflow_uri, info.store_dir), experiment=spec.experiment or info.name
    ),
    "tensorboard": lambda info, spec: TensorBoardTracker(info),
}
"""Each backend's constructor from the run's :class:`RunInfo` and the scenario's :class:`TrackingSpec`."""

ARTIFACT_SUFFIXES = (".md", ".html", ".png", ".csv", ".json", ".toml")
"""The files of a run folder uploaded as artifacts (not the checkpoint, not ``tracking/``)."""


def available_trackers() -> list[str]:
    """Names of the tracking backends, sorted.

    Example:
        >>> available_trackers()
        ['mlflow', 'tensorboard']
    """
    return sorted(TRACKERS)


class Tracking:
    """A run's trackers: each round's record, then the summary and files, to every chosen backend.

    A backend that fails after the run opened prints one warning and is dropped:
    the run folder, written first, is the record.

    Args:
        trackers: open trackers by backend name.
    """

    def __init__(self, trackers: Mapping[str, Tracker]) -> None:
        self._trackers = dict(trackers)

    def run_id(self, backend: str) -> str | None:
        """The backend's id of this run (MLflow's run id), or None."""
        tracker = self._trackers.get(backend)
        return tracker.run_id if tracker is not None else None

    def where(self) -> list[str]:
        """One line per backend: where the run is logged, and the command that shows it."""
        return [tracker.where for tracker in self._trackers.values()]

    def log_round(self, record) -> None:
        """Log a :class:`fedsim.results.RoundRecord`'s numbers at step ``record.round``."""
        metrics = {k: v for k, v in numbers(asdict(record)).items() if k != "round"}
        self._each("log_round", record.round, metrics)

    def finish(self, run_dir: Path, summary: Mapping[str, Any], *, status: str = "FINISHED") -> None:
        """Log ``summary``'s numbers (flattened, e.g. ``audit.auc``) and the run folder's files."""
        if not self._trackers:
            return
        files = (
            sorted(p for p in run_dir.iterdir() if p.is_file() and p.suffix in ARTIFACT_SUFFIXES)
            if run_dir.is_dir()
            else []
        )
        self._each("finish", numbers(flatten(summary)), files, status=status)

    def _each(self, method: str, *args, **kwargs) -> None:
        for name, tracker in list(self._trackers.items()):
            try:
                getattr(tracker, method)(*args, **kwargs)
            except Exception as err:  # noqa: BLE001 - tracking must never cost the run
                warnings.warn(f"tracking.{name} stopped logging: {err}", RuntimeWarning, stacklevel=2)
                del self._trackers[name]


def open_tracking(
    spec: TrackingSpec,
    *,
    name: str,
    run_dir: Path,
    params: Mapping[str, Any],
    store_dir: Path | None = None,
    tags: Mapping[str, str] | None = None,
    parents: Mapping[str, str] | None = None,
    fresh: bool = True,
) -> Tracking:
    """Open the run in every backend ``spec`` names, before training.

    Args:
        spec: the scenario's ``[tracking]``.
        name: the run's name.
        run_dir: the run's folder.
        params: the resolved scenario (nested tables; logged flattened).
        store_dir: where local stores go (default ``run_dir/tracking``; a sweep's ``tracking/``).
        tags: the run's labels (a sweep's axis labels).
        parents: each backend's parent run id (a sweep's), or None.
        fresh: a new run (not a resume): a single run's earlier ``tracking/`` folder is removed.

    Returns:
        The open :class:`Tracking` (with no backend when ``spec`` names none).

    Raises:
        TrackingError: a backend's package is missing or its store cannot be reached (one line).
    """
    local = store_dir is None
    store_dir = store_dir or run_dir / TRACKING_DIR
    if local and fresh:  # a new run: an earlier run's store in this folder is not this run's
        shutil.rmtree(store_dir, ignore_errors=True)
    if not spec.backends:
        return Tracking({})
    flat = flatten(params)
    trackers: dict[str, Tracker] = {}
    for backend in spec.backends:
        parent = (parents or {}).get(backend)
        info = RunInfo(name, store_dir, flat, dict(tags or {}), parent)
        trackers[backend] = TRACKERS[backend](info, spec)
    return Tracking(trackers)
