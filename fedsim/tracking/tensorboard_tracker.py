"""TensorBoard: event files under ``tracking/tensorboard/<run>``, written by PyTorch's ``SummaryWriter``.

``tensorboard --logdir <run or sweep folder>/tracking/tensorboard`` shows a run's
rounds, or a sweep's runs side by side. TensorBoard has no parent runs or
artifacts: a sweep's runs are folders named by their run id, the scenario and
the summary are text entries, and the report stays in the run folder.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from fedsim.tracking.base import RunInfo, TrackingError


class TensorBoardTracker:
    """One run's TensorBoard event files.

    Args:
        info: the run's name, folders and parameters (written as a text entry).

    Raises:
        TrackingError: if the ``tensorboard`` package is missing.
    """

    run_id: str | None = None

    def __init__(self, info: RunInfo) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise TrackingError("tracking.tensorboard needs TensorBoard: pip install tensorboard") from err
        self.log_dir = info.store_dir / "tensorboard" / info.name
        self._writer = SummaryWriter(log_dir=str(self.log_dir))
        self.where = f"TensorBoard: tensorboard --logdir {self.log_dir.parent}"
        settings = "\n".join(f"    {k} = {v}" for k, v in info.params.items())
        self._writer.add_text("scenario", settings, 0)
        if info.tags:
            self._writer.add_text("tags", json.dumps(dict(info.tags)), 0)

    def log_round(self, step: int, metrics: Mapping[str, float]) -> None:
        """Log one round's figures as scalars at ``step``."""
        for key, value in metrics.items():
            self._writer.add_scalar(key, value, step)
        self._writer.flush()

    def finish(self, summary: Mapping[str, float], artifacts: list[Path], *, status: str) -> None:
        """Log the summary's numbers (``summary/…``) and the status, and close the files."""
        for key, value in summary.items():
            self._writer.add_scalar(f"summary/{key}", value, 0)
        self._writer.add_text("status", status, 0)
        self._writer.close()
