"""What every tracking backend offers, and the scenario's ``[tracking]`` settings as a spec."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from fedsim.results.run_dir import TRACKING_DIR

__all__ = ["TRACKING_DIR", "RunInfo", "Tracker", "TrackingError", "TrackingSpec", "flatten", "numbers"]


class TrackingError(Exception):
    """A tracking backend cannot be used (package missing, server unreachable): raised before training."""


@dataclass(frozen=True)
class TrackingSpec:
    """Which backends a run logs to (``[tracking]``).

    Args:
        backends: names of :func:`fedsim.tracking.available_trackers` (empty: no tracking).
        mlflow_uri: MLflow's tracking URI, or None for a SQLite store in the run's
            (or sweep's) ``tracking/`` folder (no server to start).
        experiment: the MLflow experiment, or None for the scenario's name.
    """

    backends: tuple[str, ...] = ()
    mlflow_uri: str | None = None
    experiment: str | None = None


@dataclass(frozen=True)
class RunInfo:
    """What a backend needs to open one run.

    Args:
        name: the run's name (the scenario's, or the sweep run's id).
        store_dir: the folder of the local stores (the run's, or its sweep's, ``tracking/``).
        params: the resolved scenario, flattened to ``"section.key": value``.
        tags: labels of the run (a sweep's axis labels).
        parent: the backend's id of a parent run (a sweep), or None.
    """

    name: str
    store_dir: Path
    params: Mapping[str, Any]
    tags: Mapping[str, str]
    parent: str | None = None


class Tracker(Protocol):
    """One backend's view of one run."""

    run_id: str | None
    where: str
    """One line: where the run is logged, and the command that shows it."""

    def log_round(self, step: int, metrics: Mapping[str, float]) -> None:
        """Log one round's figures at step ``step`` (the round; 0: the initial model)."""

    def finish(self, summary: Mapping[str, float], artifacts: list[Path], *, status: str) -> None:
        """Log the run's final figures and files, and close it (status ``FINISHED`` or ``FAILED``)."""


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested tables as one level of dotted keys; lists of tables by name, other lists as text.

    A table in a list is named by its ``attack`` and ``threat_model`` (summary.json's
    audit), else by its position.

    Example:
        >>> flatten({"federation": {"rounds": 3}, "privacy": {"tiers": [1, 2]}, "name": "x"})
        {'federation.rounds': 3, 'privacy.tiers': '[1, 2]', 'name': 'x'}
        >>> flatten({"audit": {"attacks": [{"attack": "loss", "auc": 0.5}]}})
        {'audit.attacks.loss.attack': 'loss', 'audit.attacks.loss.auc': 0.5}
    """
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, list | tuple) and value and all(isinstance(v, Mapping) for v in value):
            for i, item in enumerate(value):
                label = "-".join(str(item[k]) for k in ("attack", "threat_model") if k in item) or str(i)
                out.update(flatten(item, f"{name}.{label}."))
        else:
            out[name] = str(value) if isinstance(value, list | tuple) else value
    return out


def numbers(data: Mapping[str, Any]) -> dict[str, float]:
    """The finite numbers of ``data`` (booleans and None left out), as floats.

    Example:
        >>> numbers({"a": 1, "b": None, "c": True, "d": float("nan"), "e": "x", "f": 0.5})
        {'a': 1.0, 'f': 0.5}
    """
    return {
        k: float(v)
        for k, v in data.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and v == v and abs(v) != float("inf")
    }
