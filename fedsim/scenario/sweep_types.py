"""A sweep's data types: its axes, its runs and the reserved names (see :mod:`fedsim.scenario.sweeps`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from fedsim.audit import available_attacks
from fedsim.results.records import sweep_run_columns
from fedsim.scenario.schema import Scenario

SWEEP_KEY = "sweep"
RESERVED = ("reference", "quick", "tune")
SECTIONS = tuple(name for name, f in Scenario.model_fields.items() if isinstance(f.default, BaseModel))
"""The scenario's tables, from the schema itself (a sweep axis may set a key of any of them)."""
PROTECTION_KEYS = tuple(
    f"privacy.{k}"
    for k in (
        "mode",
        "target-epsilon",
        "noise-multiplier",
        "tiers",
        "user-target-epsilon",
        "user-noise-multiplier",
        "secure-aggregation",
    )
)
"""Keys whose values name a protection: an axis that sets one is a protection axis in the report."""
REPORT_COLUMNS = sweep_run_columns(available_attacks())
"""Column names of the sweep report's ``runs.csv``: an axis may not take one of them as its name."""
MAX_RUNS = 10_000

if TYPE_CHECKING:
    from fedsim.scenario.tuning import TunePlan


@dataclass(frozen=True)
class Axis:
    """One sweep axis.

    Attributes:
        name: the scenario key (``"privacy.target-epsilon"``) or the axis's own name.
        labels: one short label per value, as run ids and reports show them.
        overlays: per value, the dotted-key → value settings it applies.
        is_key: True for an axis named by a scenario key.
    """

    name: str
    labels: tuple[str, ...]
    overlays: tuple[dict[str, Any], ...]
    is_key: bool

    @property
    def touches_privacy(self) -> bool:
        """True if any value changes a key of :data:`PROTECTION_KEYS` (a protection axis of the report)."""
        return any(k in PROTECTION_KEYS for o in self.overlays for k in o)


@dataclass(frozen=True)
class SweepRun:
    """One grid point: its id (folder name), its label on every axis and its scenario."""

    run_id: str
    labels: dict[str, str]
    scenario: Scenario


@dataclass(frozen=True)
class Sweep:
    """An expanded sweep.

    Attributes:
        name: the base scenario's ``name`` (the sweep's output folder).
        axes: the axes in file order.
        runs: every grid point, first axis slowest.
        reference: axis name → label of the sweep report's reference runs (may be empty).
        quick: True if ``--quick`` was applied.
        tune: the per-arm tuning (:class:`fedsim.scenario.tuning.TunePlan`), or None without a ``tune`` table.
    """

    name: str
    axes: tuple[Axis, ...]
    runs: tuple[SweepRun, ...]
    reference: dict[str, str]
    quick: bool
    tune: TunePlan | None = None
