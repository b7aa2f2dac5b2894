"""Parsing a sweep's axes: labels, overlays, the ``quick`` table, run ids (:mod:`fedsim.scenario.sweeps`)."""

from __future__ import annotations

import copy
import math
import re
from typing import Any

from fedsim.scenario.errors import ScenarioError
from fedsim.scenario.privacy_section import _ADAPTIVE_KEYS, _SAMPLE_KEYS, _USER_KEYS
from fedsim.scenario.sweep_types import REPORT_COLUMNS, SECTIONS, Axis


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
    is_key = name == "seed" or ("." in name and name.split(".")[0] in SECTIONS)
    if name in SECTIONS and not tables:
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
                f"seed or a dotted key of {', '.join(SECTIONS)}"
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
