"""The ``[tracking]`` section of a scenario: which experiment trackers a run logs to."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from fedsim.scenario.sections import _Section
from fedsim.tracking import TrackingSpec


class TrackingSection(_Section):
    """``[tracking]``: MLflow and TensorBoard (see :mod:`fedsim.tracking`).

    ``mlflow-uri`` defaults to a SQLite store in the run's ``tracking/`` folder
    (a sweep's: the sweep folder's); ``experiment`` to the scenario's name.
    """

    mlflow: bool = False
    tensorboard: bool = False
    mlflow_uri: Annotated[str, Field(min_length=1, max_length=4096)] | None = None
    experiment: Annotated[str, Field(min_length=1, max_length=500)] | None = None

    @model_validator(mode="after")
    def _uri_needs_mlflow(self) -> TrackingSection:
        """``mlflow-uri`` and ``experiment`` are MLflow's: they need ``mlflow = true``."""
        unused = [k for k, v in (("mlflow-uri", self.mlflow_uri), ("experiment", self.experiment)) if v]
        if unused and not self.mlflow:
            verb = "apply" if len(unused) > 1 else "applies"
            raise ValueError(f"{' and '.join(unused)} only {verb} with mlflow = true")
        return self

    def spec(self) -> TrackingSpec:
        """The section as a :class:`fedsim.tracking.TrackingSpec`."""
        backends = tuple(
            name for name, on in (("mlflow", self.mlflow), ("tensorboard", self.tensorboard)) if on
        )
        return TrackingSpec(backends=backends, mlflow_uri=self.mlflow_uri, experiment=self.experiment)
