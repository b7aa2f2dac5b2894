"""Experiment tracking: a run's rounds, settings, summary and report in MLflow or TensorBoard.

Tracking is a view of a run, never its record: the run folder is written first
and stays the source of truth. :func:`open_tracking` checks every chosen backend
before training (a missing package or an unreachable server is a one-line
:class:`TrackingError`); a backend that fails later only prints a warning.
Backends are registered in :mod:`fedsim.tracking.registry`.
"""

from fedsim.tracking.base import TrackingError, TrackingSpec
from fedsim.tracking.registry import Tracking, available_trackers, open_tracking

__all__ = ["Tracking", "TrackingError", "TrackingSpec", "available_trackers", "open_tracking"]
