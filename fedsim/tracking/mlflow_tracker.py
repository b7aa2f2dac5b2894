"""MLflow: a SQLite store in the run's folder by default, or any tracking URI (a server, Databricks).

Uses MLflow's own client (``mlflow.MlflowClient``); the ``mlflow-skinny`` package
is enough. The store is checked when the run opens, before training: an
unreachable server fails there, within a few seconds, not after the run.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Mapping
from pathlib import Path

from fedsim.tracking.base import RunInfo, TrackingError

PARAM_VALUE_LIMIT = 6000
"""MLflow's longest parameter value (characters); longer ones are cut."""

BATCH_LIMIT = 100
"""MLflow's most parameters per ``log_batch`` call."""

_QUICK_FAIL = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
"""Without these a request to an unreachable server retries for minutes (MLflow's defaults: 7 retries)."""


def tracking_uri(uri: str | None, store_dir: Path) -> str:
    """``uri``, or the default local store: SQLite in ``store_dir`` (MLflow 3 retired the file store).

    Example:
        >>> tracking_uri(None, Path("/runs/q/tracking"))
        'sqlite:////runs/q/tracking/mlflow.db'
    """
    return uri or f"sqlite:///{store_dir / 'mlflow.db'}"


class MlflowTracker:
    """One MLflow run (a sweep's runs are children of the sweep's run, MLflow's ``mlflow.parentRunId``).

    Args:
        info: the run's name, folders, parameters, tags and parent run id.
        uri: the tracking URI (:func:`tracking_uri`).
        experiment: the experiment's name (created if missing; a local store keeps its
            artifacts in ``store_dir/mlartifacts``).

    Raises:
        TrackingError: if MLflow is not installed or the store cannot be reached.
    """

    def __init__(self, info: RunInfo, *, uri: str, experiment: str) -> None:
        try:
            import mlflow
            from mlflow.entities import Param
        except ImportError as err:
            raise TrackingError(
                "tracking.mlflow needs MLflow: pip install mlflow-skinny (or mlflow)"
            ) from err
        for key, value in _QUICK_FAIL.items():
            os.environ.setdefault(key, value)
        for logger in ("mlflow", "alembic"):  # their INFO lines (database set-up) are not the run's
            logging.getLogger(logger).setLevel(logging.WARNING)
        warnings.filterwarnings("ignore", message=".*noload.*")  # SQLAlchemy's, about MLflow's store
        local = uri.startswith("sqlite:///")
        if local:
            info.store_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._client = mlflow.MlflowClient(uri)
            found = self._client.get_experiment_by_name(experiment)
            exp_id = (
                found.experiment_id
                if found is not None
                else self._client.create_experiment(
                    experiment, artifact_location=(info.store_dir / "mlartifacts").as_uri() if local else None
                )
            )
            tags = {**info.tags, **({"mlflow.parentRunId": info.parent} if info.parent else {})}
            run = self._client.create_run(exp_id, run_name=info.name, tags=tags)
        except Exception as err:  # noqa: BLE001 - MLflow raises many kinds; all mean "cannot track"
            raise TrackingError(f"tracking: MLflow at {uri} cannot be used: {_first_line(err)}") from err
        self.run_id: str | None = run.info.run_id
        self.where = (
            f"MLflow run {self.run_id} (experiment {experiment!r}): mlflow ui --backend-store-uri {uri}"
        )
        params = [Param(k, str(v)[:PARAM_VALUE_LIMIT]) for k, v in info.params.items()]
        for start in range(0, len(params), BATCH_LIMIT):
            self._client.log_batch(self.run_id, params=params[start : start + BATCH_LIMIT])

    def log_round(self, step: int, metrics: Mapping[str, float]) -> None:
        """Log one round's figures (MLflow metrics at ``step``)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in metrics.items()])

    def finish(self, summary: Mapping[str, float], artifacts: list[Path], *, status: str) -> None:
        """Log the summary's numbers (prefixed ``summary.``), upload the files, and end the run."""
        self.log_round(0, {f"summary.{k}": v for k, v in summary.items()})
        for path in artifacts:
            self._client.log_artifact(self.run_id, str(path))
        self._client.set_terminated(self.run_id, status)


def _first_line(err: BaseException) -> str:
    """The first line of an exception's message (MLflow's can be pages long)."""
    text = str(err).strip().splitlines()
    line = text[0] if text else type(err).__name__
    return line if len(line) <= 200 else line[:200] + " …"
