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
    tune = { "federation.learning-rate" = [0.5, 2] }  # optional: a grid each arm tunes on validation

* An axis named by a scenario key (``seed``, or a dotted key such as
  ``"data.alpha"``) sets that key to each value.
* An axis with any other name is a list of tables, each with a ``label`` and
  any scenario keys (tables are merged into the scenario, key by key).
* ``inf`` for ``privacy.target-epsilon`` or ``privacy.user-target-epsilon``
  removes that level of DP: ``sample`` or ``user`` becomes ``none`` (the
  non-private reference), ``both`` keeps the other level.
* ``quick`` holds overrides for ``fedsim run --quick``: dotted keys replace
  base keys, and a list for an axis name replaces that axis's values (for a
  labelled axis, a list of labels keeps those values); a ``tune`` table in it
  replaces the sweep's.
* ``tune`` names a grid that each arm (by default, a combination of labels of
  every axis but ``seed``) tunes on a validation split: see :mod:`fedsim.scenario.tuning`.

Every expanded scenario is validated before anything runs; errors name the run.
"""

from __future__ import annotations

import copy
import itertools
import math
from pathlib import Path
from typing import Any

from fedsim.scenario.errors import ScenarioError
from fedsim.scenario.reading import apply_overrides, resolve_data_files, validate_scenario
from fedsim.scenario.sweep_axes import _UNBOUNDED, _apply_quick, _axis, _drop_levels, _run_id, _set
from fedsim.scenario.sweep_types import MAX_RUNS, RESERVED, SWEEP_KEY, Axis, Sweep, SweepRun
from fedsim.scenario.tuning import TUNE_KEY, parse_tune_table, plan_tuning


def _axes_and_reference(base: dict, entries: dict, table: dict, *, quick: bool) -> tuple[dict, tuple, dict]:
    """Parse the ``[sweep]`` table: ``(base scenario after quick, axes, reference)``.

    Raises:
        ScenarioError: without the file name (the caller adds it), for any malformed entry.
    """
    if quick and "quick" not in table:
        raise ScenarioError("sweep: has no 'quick' table for --quick (e.g. quick = { seed = [0] })")
    if quick:
        quick_table = table["quick"]
        if isinstance(quick_table, dict):
            quick_table = {k: v for k, v in quick_table.items() if k != TUNE_KEY}
        base, entries = _apply_quick(base, entries, quick_table)
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
    return base, axes, reference


def _run_raw(base: dict, axes: tuple, picks: tuple[int, ...], base_dir: Path | None) -> dict[str, Any]:
    """One grid point's raw scenario: the base with each axis's chosen overlay (inf ε drops a DP level)."""
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
    return run_raw


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
        base, axes, reference = _axes_and_reference(base, entries, table, quick=quick)
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
        run_raw = _run_raw(base, axes, picks, base_dir)
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
    tune = _tune_table(table, axes, quick=quick, source=source)
    plan = plan_tuning(tune, axes, tuple(runs), source=source, sweep_name=name) if tune is not None else None
    return Sweep(name=name, axes=axes, runs=tuple(runs), reference=dict(reference), quick=quick, tune=plan)


def _tune_table(table: dict[str, Any], axes: tuple[Axis, ...], *, quick: bool, source: str) -> Any:
    """The sweep's ``tune`` table (under ``--quick``, the ``quick`` table's own if it has one), or None.

    A ``quick.tune`` table is checked with or without ``--quick``.

    Raises:
        ScenarioError: for a malformed ``quick.tune`` table, naming ``sweep.quick.tune``.
    """
    quick_table = table.get("quick")
    if not (isinstance(quick_table, dict) and TUNE_KEY in quick_table):
        return table.get(TUNE_KEY)
    try:
        parse_tune_table(quick_table[TUNE_KEY], axes)
    except ScenarioError as err:
        raise ScenarioError(f"{source}: {str(err).replace('sweep.tune', 'sweep.quick.tune', 1)}") from None
    return quick_table[TUNE_KEY] if quick else table.get(TUNE_KEY)


def is_sweep(raw: dict[str, Any]) -> bool:
    """True if a parsed scenario file has a ``[sweep]`` table."""
    return SWEEP_KEY in raw


__all__ = ["Axis", "Sweep", "SweepRun", "apply_overrides", "expand_sweep", "is_sweep"]
