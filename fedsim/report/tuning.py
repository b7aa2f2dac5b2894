"""The sweep report's "Tuning" section, from the sweep's ``tune.json`` (:mod:`fedsim.commands.tune`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fedsim.report.tables import escape, fmt, table

TUNE_FILE = "tune.json"


def read_tuning(sweep_dir: Path) -> dict[str, Any] | None:
    """The sweep's ``tune.json``, or None if it did not tune (or the file cannot be read)."""
    try:
        return json.loads((Path(sweep_dir) / TUNE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _config(config: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {v}" for k, v in config.items()) or "as given"


def _row(arm: dict[str, Any], by: list[str]) -> list[Any]:
    """One arm: its labels, trials, chosen configuration, and its best and worst validation accuracy."""
    finished = [t for t in arm["trials"] if t["validation_accuracy"] is not None]
    accuracies = [t["validation_accuracy"] for t in finished]
    config = arm.get("config")
    return [
        *(arm["labels"].get(name) for name in by),
        f"{len(finished)} of {len(arm['trials'])}" if arm["trials"] else "none needed (one configuration)",
        _config(config) if config is not None else "none finished",
        f"{fmt(100 * max(accuracies))} %" if accuracies else None,
        f"{fmt(100 * min(accuracies))} %" if accuracies else None,
    ]


def tuning_section(record: dict[str, Any] | None) -> list[str]:
    """Markdown lines of the "Tuning" section (none when the sweep did not tune).

    It names the grid, how many trials each arm ran, what it chose and on what,
    and says that the tuning's own privacy cost is not in any run's ε.
    """
    if not record:
        return []
    by = record["by"]
    grid = "; ".join(f"`{escape(k)}` ∈ {{{', '.join(map(str, v))}}}" for k, v in record["grid"].items())
    trials = sum(len(arm["trials"]) for arm in record["arms"])
    rows = [_row(arm, by) for arm in record["arms"]]
    header = [*by, "trials finished", "chosen configuration", "best validation accuracy", "worst"]
    return [
        "## Tuning",
        "",
        f"Each arm ({', '.join(by) or 'the whole sweep'}) chose its configuration from the grid {grid}: "
        f"{trials} trials in all (grid points that resolve to the same run are one trial). A trial "
        "trains the arm's first run on the training data less a validation split of "
        f"{fmt(100 * record['validation_fraction'])} % and scores its final model on that split; the "
        "highest validation accuracy wins, and every run of the arm then trains with it. "
        "**The test set is never read while tuning.** Trials: `tune/<arm>/<trial>/`.",
        "",
        table(header, rows),
        "",
        "**The tuning is not in any ε shown here.** Every trial trained on the same private data, "
        "and choosing the best of them leaks through the choice; each run's ε counts that run "
        "alone. Papernot and Steinke 2022 (https://arxiv.org/abs/2110.03620) bound the cost of "
        "tuning with Rényi DP; an ε for the whole procedure must add it.",
        "",
    ]
