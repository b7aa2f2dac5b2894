"""The ``tune`` table of a sweep, checked: its grid, ``by`` and ``validation-fraction``.

See :mod:`fedsim.scenario.tuning` for what tuning does with it.
"""

from __future__ import annotations

import math
from typing import Any

from fedsim.scenario.errors import ScenarioError
from fedsim.scenario.sweep_axes import _flatten
from fedsim.scenario.sweep_types import PROTECTION_KEYS, SECTIONS, Axis

TUNE_KEY = "tune"
DEFAULT_VALIDATION_FRACTION = 0.1
"""Share of the training data each trial holds out for validation, unless ``validation-fraction`` says."""
MAX_TRIALS = 100
"""Grid points per arm, at most: every one is a full training run."""
_OPTIONS = ("validation-fraction", "by")
_UNTUNABLE = ("seed", "name", "data.validation-fraction", *PROTECTION_KEYS)
_UNTUNABLE_SECTIONS = ("data", "audit", "tracking", "resources")


def _where(key: str = "") -> str:
    return f"sweep.tune.{key}" if key else "sweep.tune"


def _why_untunable(key: str) -> str:
    """Why ``key`` cannot be tuned, and what to do instead (one clause)."""
    if key in PROTECTION_KEYS:
        return "it is what the arms compare; make it a protection axis of the sweep instead"
    if key == "seed":
        return "seeds are repetitions; make seed a sweep axis instead"
    if key.split(".")[0] == "data":
        return "[data] decides the data the trials are scored on; sweep it as an axis instead"
    if key == "name":
        return "it names the run"
    return f"[{key.split('.')[0]}] does not change how a model trains"


def _parse_grid(table: dict[str, Any], axes: tuple[Axis, ...]) -> dict[str, tuple]:
    """The grid of a ``tune`` table: dotted scenario key → its values (see :func:`parse_tune_table`)."""
    swept = {k: a.name for a in axes for overlay in a.overlays for k in overlay}
    grid: dict[str, tuple] = {}
    for key, values in _flatten({k: v for k, v in table.items() if k not in _OPTIONS}).items():
        if key in _UNTUNABLE or key.split(".")[0] in _UNTUNABLE_SECTIONS:
            raise ScenarioError(f"{_where(key)}: cannot be tuned: {_why_untunable(key)}")
        if "." not in key or key.split(".")[0] not in SECTIONS:
            tunable = ", ".join(s for s in SECTIONS if s not in _UNTUNABLE_SECTIONS)
            raise ScenarioError(
                f"{_where(key)}: not a tunable scenario key (a dotted key of {tunable}, e.g. "
                f'"federation.learning-rate"); the table\'s own keys are {", ".join(_OPTIONS)}'
            )
        if key in swept:
            raise ScenarioError(f"{_where(key)}: the sweep axis {swept[key]!r} sets it; sweep it or tune it")
        if not isinstance(values, list) or not values or any(isinstance(v, dict | list) for v in values):
            raise ScenarioError(f"{_where(key)}: must be a non-empty list of plain values, got {values!r}")
        if len(set(map(repr, values))) != len(values):
            raise ScenarioError(f"{_where(key)}: values must differ, got {values!r}")
        grid[key] = tuple(values)
    return grid


def parse_tune_table(table: Any, axes: tuple[Axis, ...]) -> tuple[dict[str, tuple], tuple[str, ...], float]:
    """Check a ``tune`` table.

    Args:
        table: the parsed ``tune`` table (dotted or nested scenario keys → lists of
            values, and the options ``by`` and ``validation-fraction``).
        axes: the sweep's axes.

    Returns:
        ``(grid, by, validation_fraction)``: dotted key → values in file order; the
        arm-defining axis names in axis order; the held-out share in ``(0, 0.5]``.

    Raises:
        ScenarioError: one line naming the key, for a table that is not a table,
            a key that is not a tunable scenario key or that an axis sweeps, values
            that are not a non-empty list of distinct plain values, a ``by`` that names
            an unknown axis or leaves out a protection axis, a ``validation-fraction``
            outside ``(0, 0.5]``, no key to tune, or more than :data:`MAX_TRIALS` grid points.
    """
    example = '{ "federation.learning-rate" = [0.5, 1.0, 2.0] }'
    if not isinstance(table, dict):
        raise ScenarioError(
            f"{_where()}: must be a table of scenario keys to lists of values, e.g. {example}"
        )
    grid = _parse_grid(table, axes)
    if not grid:
        raise ScenarioError(f"{_where()}: names no key to tune, e.g. {example}")
    if (points := math.prod(len(v) for v in grid.values())) > MAX_TRIALS:
        raise ScenarioError(f"{_where()}: {points} grid points per arm; at most {MAX_TRIALS}")
    names = [a.name for a in axes]
    by = table.get("by", [n for n in names if n != "seed"])
    if not isinstance(by, list) or not all(isinstance(b, str) and b in names for b in by):
        raise ScenarioError(f"{_where('by')}: must be a list of this sweep's axes {names}, got {by!r}")
    if missing := [a.name for a in axes if a.touches_privacy and a.name not in by]:
        raise ScenarioError(
            f"{_where('by')}: must include the protection axes {missing}: each protection tunes on its own"
        )
    fraction = table.get("validation-fraction", DEFAULT_VALIDATION_FRACTION)
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction <= 0.5:
        raise ScenarioError(
            f"{_where('validation-fraction')}: must be a number in (0, 0.5], got {fraction!r}"
        )
    return grid, tuple(b for b in names if b in by), float(fraction)
