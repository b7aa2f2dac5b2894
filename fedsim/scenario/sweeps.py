"""Sweeps: a scenario file with a ``[sweep]`` table expands into one scenario per grid point.

A ``[sweep]`` table lists axes; the runs are their cartesian product, in file
order (the first axis varies slowest), like Hydra's multirun or the
``run_*_experiments.sh`` loops of Flower's baselines::

    [sweep]
    seed = [0, 1, 2]                              # a scenario key: one run per value
    "privacy.target-epsilon" = [1, 3, 8, inf]     # inf: no DP (privacy.mode = "none")
    split = [                                     # any other name: labelled overlays
      { label = "iid", data = { partitioner = "iid" } },
      { label = "dir-0.1", data = { partitioner = "dirichlet", alpha = 0.1 } },
    ]
    reference = { protection = "fl" }             # optional: the sweep report's reference run
    quick = { "federation.rounds" = 2, seed = [0] }   # optional: what --quick changes

* An axis named by a scenario key (``seed``, or a dotted key such as
  ``"data.alpha"``) sets that key to each value.
* An axis with any other name is a list of tables, each with a ``label`` and
  any scenario keys (tables are merged into the scenario, key by key).
* ``inf`` for ``privacy.target-epsilon`` or ``privacy.user-target-epsilon``
  removes that level of DP: ``sample`` or ``user`` becomes ``none`` (the
  non-private reference), ``both`` keeps the other level.
* ``quick`` holds overrides for ``fedsim run --quick``: dotted keys replace
  base keys, and a list for an axis name replaces that axis's values (for a
  labelled axis, a list of labels keeps those values).

Every expanded scenario is validated before anything runs; errors name the run.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from fedsim.audit import available_attacks
from fedsim.results.records import sweep_run_columns
from fedsim.scenario.errors import ScenarioError
from fedsim.scenario.privacy_section import _ADAPTIVE_KEYS, _SAMPLE_KEYS, _USER_KEYS
from fedsim.scenario.reading import apply_overrides, resolve_data_files, validate_scenario
from fedsim.scenario.schema import Scenario

SWEEP_KEY = "sweep"
RESERVED = ("reference", "quick")
_SECTIONS = tuple(name for name, f in Scenario.model_fields.items() if isinstance(f.default, BaseModel))
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
    """

    name: str
    axes: tuple[Axis, ...]
    runs: tuple[SweepRun, ...]
    reference: dict[str, str]
    quick: bool


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys of a nested table, e.g. ``{"data": {"alpha": 1}}`` → ``{"data.alpha": 1}``.

    Lists of tables (``privacy.tiers``) stay whole values.

    Example:
        >>> _flatten({"data": {"alpha": 0.1, "partitioner": "dirichlet"}, "seed": 1})
        {'data.alpha': 0.1, 'data.partitioner': 'dirichlet', 'seed': 1}
    """
    out: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{dotted}."))
        else:
            out[dotted] = value
    return out


def _label(value: Any) -> str:
    """A short label for a scalar axis value, exact but without a trailing ``.0``.

    Example:
        >>> [_label(v) for v in (3.0, 0.1, 1234567.0, 1e-5, float("-inf"), True, "iid")]
        ['3', '0.1', '1234567', '1e-05', '-inf', 'True', 'iid']
    """
    if isinstance(value, float):
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def _axis(name: str, values: Any) -> Axis:
    """Parse one ``[sweep]`` entry.

    Raises:
        ScenarioError: naming the axis, if its values are not a non-empty list, or a
            labelled value lacks a unique ``label``.
    """
    where = f"sweep.{name}"
    if name in REPORT_COLUMNS:
        raise ScenarioError(f"{where}: {name!r} names a column of the sweep report; choose another axis name")
    if not isinstance(values, list) or not values:
        raise ScenarioError(f"{where}: must be a non-empty list of values, got {values!r}")
    tables = all(isinstance(v, dict) for v in values)
    is_key = name == "seed" or ("." in name and name.split(".")[0] in _SECTIONS)
    if name in _SECTIONS and not tables:
        raise ScenarioError(
            f'{where}: sweep one key of [{name}] ("{name}.KEY" = [...]) or give labelled tables'
        )
    if is_key:
        if any(isinstance(v, dict | list) for v in values):
            raise ScenarioError(f"{where}: a scenario key's values must be plain values, got {values!r}")
        overlays = tuple({name: v} for v in values)
        labels = tuple(_label(v) for v in values)
    else:
        if not tables:
            raise ScenarioError(
                f"{where}: not a scenario key, so its values must be tables with a 'label' "
                f'(e.g. {{ label = "iid", data = {{ partitioner = "iid" }} }}); a scenario key is '
                f"seed or a dotted key of {', '.join(_SECTIONS)}"
            )
        labels, overlays_list = [], []
        for i, value in enumerate(values):
            label = value.get("label")
            if not isinstance(label, str) or not label:
                raise ScenarioError(f"{where}[{i}]: needs a 'label' (a non-empty string)")
            labels.append(label)
            overlays_list.append(_flatten({k: v for k, v in value.items() if k != "label"}))
        overlays = tuple(overlays_list)
        labels = tuple(labels)
    if len(set(labels)) != len(labels):
        raise ScenarioError(f"{where}: labels must differ, got {list(labels)}")
    return Axis(name=name, labels=labels, overlays=overlays, is_key=is_key)


def _set(raw: dict[str, Any], dotted: str, value: Any) -> None:
    """Set a dotted key in a nested dict, creating tables on the way."""
    *tables, leaf = dotted.split(".")
    node = raw
    for table in tables:
        child = node.get(table)
        if not isinstance(child, dict):
            child = {}
        node[table] = child = dict(child)
        node = child
    node[leaf] = value


_UNBOUNDED = {"privacy.target-epsilon": "sample", "privacy.user-target-epsilon": "user"}
_LEVELS = {"none": set(), "sample": {"sample"}, "user": {"user"}, "both": {"sample", "user"}}


def _drop_levels(raw: dict[str, Any], levels: set[str]) -> None:
    """Remove DP ``levels`` (``"sample"``, ``"user"``) whose ε was set to inf from ``raw``'s privacy mode.

    ``both`` with an infinite sample-level ε becomes ``user`` (and the reverse);
    with nothing left the mode is ``none``. The dropped levels' keys are removed.
    """
    privacy = raw.get("privacy") if isinstance(raw.get("privacy"), dict) else {}
    kept = _LEVELS[privacy.get("mode", "sample")] - levels
    mode = {frozenset(): "none", frozenset({"sample"}): "sample", frozenset({"user"}): "user"}.get(
        frozenset(kept), "both"
    )
    dropped = set()
    if "sample" in levels:
        dropped |= {*_SAMPLE_KEYS, "max-grad-norm"}
    if "user" in levels:
        dropped |= {*_USER_KEYS, *_ADAPTIVE_KEYS}
    raw["privacy"] = {**{k: v for k, v in privacy.items() if k not in dropped}, "mode": mode}


def _run_id(axes: tuple[Axis, ...], labels: tuple[str, ...]) -> str:
    """A folder-safe id from the labels, e.g. ``target-epsilon-3_split-iid_seed-0``."""
    parts = [f"{axis.name.split('.')[-1]}-{label}" for axis, label in zip(axes, labels, strict=True)]
    return re.sub(r"[^A-Za-z0-9._-]", "-", "_".join(parts))[:100] or "run"


def _apply_quick(base: dict[str, Any], entries: dict[str, Any], quick: Any) -> tuple[dict, dict]:
    """Apply the ``quick`` table to the base scenario and the axis entries.

    Raises:
        ScenarioError: if ``quick`` is not a table or names a label an axis lacks.
    """
    if not isinstance(quick, dict):
        raise ScenarioError(f"sweep.quick: must be a table of overrides, got {quick!r}")
    base, entries = copy.deepcopy(base), dict(entries)
    for key, value in _flatten(quick).items():
        if key in entries:
            values = entries[key]
            if isinstance(values, list) and values and all(isinstance(v, dict) for v in values):
                chosen = value if isinstance(value, list) else [value]
                if not all(isinstance(c, str) for c in chosen):
                    raise ScenarioError(
                        f"sweep.quick.{key}: give the labels to keep (strings), got {value!r}"
                    )
                by_label = {v.get("label"): v for v in values}
                missing = [c for c in chosen if c not in by_label]
                if missing:
                    raise ScenarioError(
                        f"sweep.quick.{key}: no such label {missing}; labels: {list(by_label)}"
                    )
                entries[key] = [by_label[c] for c in chosen]
            else:
                entries[key] = value if isinstance(value, list) else [value]
        else:
            _set(base, key, value)
    return base, entries


def expand_sweep(
    raw: dict[str, Any], *, source: str, quick: bool = False, base_dir: Path | None = None
) -> Sweep:
    """Expand a parsed scenario file that has a ``[sweep]`` table.

    Args:
        raw: the parsed TOML (kebab-case keys), ``--set`` overrides already applied.
        source: the file name, for error messages.
        quick: apply the sweep's ``quick`` overrides (``fedsim run --quick``).
        base_dir: the scenario file's folder: relative ``data.data-files`` paths set
            by an axis or by ``quick`` are taken relative to it.

    Returns:
        The sweep; every run's scenario is validated and named ``<name>.<run id>``.

    Raises:
        ScenarioError: naming the file, the run and the key, for a malformed
            ``[sweep]`` table or any expanded scenario that is invalid (all
            problems of the first invalid run), or a grid of more than 10,000 runs.
    """
    table = raw.get(SWEEP_KEY)
    if not isinstance(table, dict) or not table:
        raise ScenarioError(f"{source}: sweep: must be a non-empty table of axes")
    base = {k: v for k, v in raw.items() if k != SWEEP_KEY}
    entries = {k: v for k, v in table.items() if k not in RESERVED}
    try:
        if quick and "quick" not in table:
            raise ScenarioError("sweep: has no 'quick' table for --quick (e.g. quick = { seed = [0] })")
        if quick:
            base, entries = _apply_quick(base, entries, table["quick"])
        axes = tuple(_axis(name, values) for name, values in entries.items())
        if not axes:
            raise ScenarioError("sweep: has no axes (a key with a list of values)")
        reference = table.get("reference", {})
        if not isinstance(reference, dict) or not all(isinstance(v, str) for v in reference.values()):
            raise ScenarioError(f'sweep.reference: must be a table axis = "label", got {reference!r}')
        for name, label in reference.items():
            axis = next((a for a in axes if a.name == name), None)
            if axis is None or label not in axis.labels:
                raise ScenarioError(f"sweep.reference.{name}: no axis {name!r} with label {label!r}")
        missing = [a.name for a in axes if a.touches_privacy and a.name not in reference]
        if reference and missing:
            raise ScenarioError(f"sweep.reference: also give a label for the protection axes {missing}")
    except ScenarioError as err:
        raise ScenarioError(f"{source}: {err}") from None
    total = math.prod(len(a.labels) for a in axes)
    if total > MAX_RUNS:
        raise ScenarioError(f"{source}: sweep: {total} runs; at most {MAX_RUNS}")
    name = base.get("name")
    if not isinstance(name, str):
        validate_scenario(base, source=source)  # reports the missing or invalid name
    runs, seen = [], {}
    for picks in itertools.product(*(range(len(a.labels)) for a in axes)):
        labels = tuple(a.labels[i] for a, i in zip(axes, picks, strict=True))
        run_raw = copy.deepcopy(base)
        unbounded = set()
        for axis, i in zip(axes, picks, strict=True):
            for key, value in axis.overlays[i].items():
                if key in _UNBOUNDED and value == math.inf:
                    unbounded.add(_UNBOUNDED[key])
                    continue
                _set(run_raw, key, value)
        if unbounded:
            _drop_levels(run_raw, unbounded)
        if base_dir is not None:
            run_raw = resolve_data_files(run_raw, base_dir)
        run_id = _run_id(axes, labels)
        if run_id in seen:
            raise ScenarioError(
                f"{source}: sweep: runs {seen[run_id]} and {list(labels)} would share the folder "
                f"{run_id!r}; use labels that differ in letters, digits, '.', '-' or '_'"
            )
        seen[run_id] = list(labels)
        run_raw["name"] = f"{name}.{run_id}"[:100]
        scenario = validate_scenario(run_raw, source=f"{source} (sweep run {run_id})")
        runs.append(
            SweepRun(
                run_id=run_id,
                labels={a.name: label for a, label in zip(axes, labels, strict=True)},
                scenario=scenario,
            )
        )
    return Sweep(name=name, axes=axes, runs=tuple(runs), reference=dict(reference), quick=quick)


def is_sweep(raw: dict[str, Any]) -> bool:
    """True if a parsed scenario file has a ``[sweep]`` table."""
    return SWEEP_KEY in raw


__all__ = ["Axis", "Sweep", "SweepRun", "apply_overrides", "expand_sweep", "is_sweep"]
