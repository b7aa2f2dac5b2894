"""The one conversion between a :class:`RunSummary` and the JSON object of ``summary.json``.

Layout of ``summary.json`` (one flat object, in this order): the run's figures
from ``scenario`` to ``stop_reason``, then the privacy keys (the fields of
:class:`PrivacySummary`, ``tiers`` as a list of ``{name, share,
target_epsilon}``), ``audit`` (:class:`AuditSummary`'s fields with ``attacks``
as a list of objects; a failed audit only ``{"error", "attacks": []}``; null if
no audit ran), ``seed``, ``wall_s``, ``resumed_from_round``, ``environment``,
and last ``status`` (added by :func:`fedsim.results.save_run`). JSON has no
infinities or NaN: a non-finite float is written as null.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any

from fedsim.results.summary import (
    AttackResult,
    AuditSummary,
    CanaryResult,
    PrivacySummary,
    RunSummary,
    TierSummary,
)

REQUIRED_KEYS = (
    "scenario",
    "dataset",
    "model",
    "partitioner",
    "num_clients",
    "rounds_completed",
    "final_accuracy",
    "final_loss",
    "seed",
    "wall_s",
)
"""Keys every ``summary.json`` has had; any other key missing from an older file reads as its default."""
_DEFAULTS = {"privacy_mode": "none", "secure_aggregation": False, "diverged": False}
"""Defaults of the keys older files may lack (every other one: None)."""


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (a diverged loss, an infinite ε) as None and tuples as lists.

    Example:
        >>> json_safe({"loss": float("nan"), "eps": (1.0, float("inf"))})
        {'loss': None, 'eps': [1.0, None]}
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def audit_to_json(audit: AuditSummary) -> dict[str, Any]:
    """The ``audit`` entry of ``summary.json`` (not yet :func:`json_safe`)."""
    if audit.error is not None:
        return {"error": audit.error, "attacks": []}
    entry = {
        f.name: getattr(audit, f.name)
        for f in fields(AuditSummary)
        if f.name not in ("error", "attacks", "canaries")
    }
    canaries = [{**asdict(c), "ratio": c.ratio, "exceeds": c.exceeds} for c in audit.canaries]
    return {
        **entry,
        "notes": list(audit.notes),
        "attacks": [asdict(a) for a in audit.attacks],
        "canaries": canaries,
        "epsilon_exceeded": any(c.exceeds for c in audit.canaries),
    }


def privacy_to_json(privacy: PrivacySummary) -> dict[str, Any]:
    """The privacy keys of ``summary.json`` (at its top level; not yet :func:`json_safe`)."""
    entry = {f.name: getattr(privacy, f.name) for f in fields(PrivacySummary)}
    if privacy.tiers is not None:
        entry["tiers"] = [asdict(t) for t in privacy.tiers]
    return entry


def summary_to_json(summary: RunSummary) -> dict[str, Any]:
    """``summary.json``'s object for ``summary`` (without ``status``), safe for strict JSON.

    Args:
        summary: the run's summary.

    Returns:
        A dict of JSON values: lists, not tuples, and None for every non-finite float.
    """
    entry: dict[str, Any] = {}
    for f in fields(RunSummary):
        value = getattr(summary, f.name)
        if f.name == "privacy":
            entry.update(privacy_to_json(value))
        elif f.name == "audit":
            entry["audit"] = None if value is None else audit_to_json(value)
        else:
            entry[f.name] = value
    return json_safe(entry)


def _get(data: Mapping[str, Any], name: str) -> Any:
    return data.get(name, _DEFAULTS.get(name))


def audit_from_json(data: Mapping[str, Any] | None) -> AuditSummary | None:
    """The :class:`AuditSummary` of ``summary.json``'s ``audit`` entry (None stays None).

    Raises:
        KeyError: if a figure is missing.
        TypeError: if the entry or an attack is not an object.
    """
    if data is None:
        return None
    if data.get("error") is not None:
        return AuditSummary.failed(data["error"])
    names = [f.name for f in fields(AttackResult)]
    return AuditSummary(
        members=data["members"],
        nonmembers=data["nonmembers"],
        confidence=data["confidence"],
        delta=data["delta"],
        shadow_models=data.get("shadow_models", 0),
        shadow_training=data.get("shadow_training"),
        notes=tuple(data.get("notes") or ()),
        audit_s=data.get("audit_s"),
        attacks=tuple(AttackResult(**{n: a[n] for n in names}) for a in data["attacks"]),
        canaries=tuple(
            CanaryResult(**{f.name: c[f.name] for f in fields(CanaryResult)})
            for c in data.get("canaries", ())
        ),
    )


def privacy_from_json(data: Mapping[str, Any]) -> PrivacySummary:
    """The :class:`PrivacySummary` of ``summary.json``'s privacy keys (missing keys: their defaults)."""
    values = {f.name: _get(data, f.name) for f in fields(PrivacySummary)}
    if values["tiers"] is not None:
        values["tiers"] = tuple(
            TierSummary(t["name"], t.get("share"), t.get("target_epsilon")) for t in values["tiers"]
        )
    return PrivacySummary(**values)


def summary_from_json(data: Mapping[str, Any]) -> RunSummary:
    """The :class:`RunSummary` of a ``summary.json`` object (``status`` and unknown keys are ignored).

    Args:
        data: the parsed JSON object, as written today or by an earlier fedsim
            (keys it lacks, other than :data:`REQUIRED_KEYS`, read as None, False or ``"none"``).

    Returns:
        The summary; figures written as null (non-finite) are None.

    Raises:
        KeyError: if a key of :data:`REQUIRED_KEYS` or an audit figure is missing.
        TypeError: if ``data`` or a nested entry has the wrong shape.
    """
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise KeyError(f"missing {', '.join(missing)}")
    values = {f.name: _get(data, f.name) for f in fields(RunSummary) if f.name not in ("privacy", "audit")}
    return RunSummary(**values, privacy=privacy_from_json(data), audit=audit_from_json(data.get("audit")))
