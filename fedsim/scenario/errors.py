"""Scenario errors: one line per invalid key, naming the key, what is wrong and what is allowed.

TOML keys are kebab-case (as Flower's run config) and Python names snake_case;
:func:`kebab` is the one conversion between them.
"""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel


class ScenarioError(ValueError):
    """A scenario file that cannot be read or is invalid; the message names the file and key."""


def kebab(name: str) -> str:
    """The TOML key of a Python field name.

    Example:
        >>> kebab("target_epsilon")
        'target-epsilon'
    """
    return name.replace("_", "-")


def _table_model(annotation: Any) -> type[BaseModel] | None:
    """The section model a field holds: itself, or the one inside ``list[...]`` / ``... | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _table_model(arg)
        if found is not None:
            return found
    return None


def clip(text: str, limit: int = 200) -> str:
    """``text``, or its first ``limit`` characters and its length, so an error line stays short.

    Example:
        >>> clip("x" * 300, 5)
        'xxxxx... (300 characters)'
    """
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _allowed_keys(loc: list[str], model: type[BaseModel]) -> list[str]:
    """The keys allowed in the table that holds the last part of ``loc``."""
    section: type[BaseModel] | None = model
    for part in loc[:-1]:
        if part.isdigit() and section is not None:  # an item of a list of tables
            continue
        field = (
            next((f for n, f in section.model_fields.items() if kebab(n) == part), None) if section else None
        )
        section = _table_model(field.annotation if field else None)
    return sorted(kebab(n) for n in section.model_fields) if section else []


def describe_error(error: dict[str, Any], model: type[BaseModel]) -> str:
    """One line for one pydantic error: the dotted key, what is wrong, what is allowed.

    A key with a control character (a newline, NUL) is quoted, and long keys and
    values are clipped, so the line stays one short line.

    Args:
        error: one entry of pydantic's ``ValidationError.errors()``.
        model: the model validated (to list the allowed keys of a table).
    """
    loc = [str(part) if str(part).isprintable() else repr(str(part)) for part in error["loc"]]
    key = clip(".".join(loc)) if loc else "(file)"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{key}: unknown key; allowed keys here: {', '.join(_allowed_keys(loc, model))}"
    if kind == "missing":
        return f"{key}: required key is missing"
    got = error.get("input")
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if not loc:  # a rule across sections; the message names the keys
        return message
    if isinstance(got, dict):  # a rule across keys of one table; the message names them
        return f"{key}: {message}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"{key}: must be a table ([{key}]), got {clip(repr(got))}"
    return f"{key}: {message} (got {clip(repr(got))})"
