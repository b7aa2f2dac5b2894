"""Reading a scenario file: bounded read, TOML, ``--set`` overrides, validation with one line per error."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fedsim.scenario.errors import ScenarioError, describe_error
from fedsim.scenario.schema import Scenario

MAX_SCENARIO_BYTES = 1_000_000
"""Largest scenario file read (a scenario or sweep file is a few kilobytes)."""


def _parse_value(text: str) -> Any:
    """Parse a ``--set`` value as a TOML value; bare words are strings."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):  # RecursionError: arrays nested too deeply
        return text


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``KEY=VALUE`` overrides (dotted kebab-case keys) to a parsed TOML dict.

    Raises:
        ScenarioError: if an override is not ``KEY=VALUE`` or walks into a non-table.

    Example:
        >>> apply_overrides({"federation": {"rounds": 5}}, ["federation.rounds=2", "seed=3"])
        {'federation': {'rounds': 2}, 'seed': 3}
    """
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ScenarioError(f"--set {item!r}: expected KEY=VALUE, e.g. federation.rounds=2")
        *tables, leaf = key.strip().split(".")
        node = out
        for table in tables:
            child = node.setdefault(table, {})
            if not isinstance(child, dict):
                raise ScenarioError(f"--set {item!r}: {table!r} is not a table")
            node[table] = child = dict(child)
            node = child
        parsed = _parse_value(value.strip())
        if isinstance(parsed, dict) or isinstance(node.get(leaf), dict):
            raise ScenarioError(
                f"--set {item!r}: sets one key, not a whole table; set the keys inside it "
                f"one at a time, e.g. --set {key.strip()}.KEY=VALUE"
            )
        node[leaf] = parsed
    return out


def validate_scenario(raw: dict[str, Any], *, source: str) -> Scenario:
    """Validate a parsed scenario dict.

    Args:
        raw: parsed TOML (kebab-case keys).
        source: file name used in error messages.

    Raises:
        ScenarioError: listing every invalid key, one per line, each prefixed by
            ``source``.
    """
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as err:
        lines = [f"{source}: {describe_error(e, Scenario)}" for e in err.errors()]
        raise ScenarioError("\n".join(lines)) from None
    return scenario


def read_scenario_file(path: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """Read a scenario file as a dict and apply ``--set`` overrides (nothing validated yet).

    Args:
        path: a TOML file.
        overrides: ``KEY=VALUE`` strings, e.g. ``["federation.rounds=2"]``.
            Relative ``data.data-files`` paths are taken relative to the file's folder.

    Raises:
        ScenarioError: if the file is missing, unreadable, larger than
            :data:`MAX_SCENARIO_BYTES`, not UTF-8, not TOML or empty; the message
            names the file.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_SCENARIO_BYTES + 1)  # bounded: the path may be /dev/zero
        text = data.decode("utf-8-sig")  # a leading byte-order mark is tolerated
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such scenario file") from None
    except IsADirectoryError:
        raise ScenarioError(f"{path}: is a directory, not a scenario file") from None
    except UnicodeDecodeError as err:
        raise ScenarioError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise ScenarioError(f"{path}: cannot read ({err.strerror})") from None
    if len(data) > MAX_SCENARIO_BYTES:
        raise ScenarioError(f"{path}: larger than {MAX_SCENARIO_BYTES} bytes; a scenario is a short file")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(f"{path}: not valid TOML: {err}") from None
    except RecursionError:
        raise ScenarioError(f"{path}: arrays or inline tables nested too deeply to read") from None
    if not raw:
        raise ScenarioError(f"{path}: empty scenario; at least 'name' is required")
    return resolve_data_files(apply_overrides(raw, overrides or []), path.parent)


def source_name(path: str | Path, overrides: list[str] | None = None) -> str:
    """How error messages name a scenario file and its ``--set`` overrides."""
    return f"{path} (with --set {' '.join(overrides)})" if overrides else str(path)


def load_scenario(path: str | Path, overrides: list[str] | None = None) -> Scenario:
    """Read, override and validate a scenario file.

    Args:
        path: a TOML file (without a ``[sweep]`` table: see :mod:`fedsim.scenario.sweeps`).
        overrides: ``KEY=VALUE`` strings, e.g. ``["federation.rounds=2"]``.
            Relative ``data.data-files`` paths are taken relative to the file's folder.

    Raises:
        ScenarioError: if the file is missing, unreadable, not UTF-8, not TOML, or
            invalid; the message names the file and the key.
    """
    raw = read_scenario_file(path, overrides)
    return validate_scenario(raw, source=source_name(path, overrides))


def resolve_data_files(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    """Make relative ``data.data-files`` paths absolute, relative to the scenario file's folder."""
    data = raw.get("data")
    files = data.get("data-files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return raw
    resolved = {
        split: str((base / p).resolve()) if isinstance(p, str) and p and not Path(p).is_absolute() else p
        for split, p in files.items()
    }
    return {**raw, "data": {**data, "data-files": resolved}}
