"""A sweep's runs as rows and as cells: one per run, and one per (group, protection) averaged over seeds.

Runs are grouped three ways by their sweep axes:

* **protection**: the axes that change a ``privacy.*`` key (or are named in
  ``sweep.reference``); their labels name a protection, e.g. ``eps-3``;
* **seed**: repetitions, averaged (mean and standard deviation);
* **group**: every other axis (split, model, ...): one line on the frontier and
  one summary table each.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from fedsim.audit.registry import available_attacks
from fedsim.results import AttackResult, RunResult, RunSummary, sweep_run_columns

SEED_AXIS = "seed"


@dataclass(frozen=True)
class Cell:
    """One protection in one group, over its seeds.

    Attributes:
        group: the group's labels joined by ``", "`` (``"all runs"`` without group axes).
        protection: the protection's labels joined by ``" / "``.
        mechanism: what the runs had: ``no DP``, ``sample-level DP``, ``user-level DP``,
            ``sample- and user-level DP``, with `` + SecAgg+`` when used.
        runs: how many complete runs (seeds).
        accuracy_mean, accuracy_sd: final test accuracy in [0, 1]; sd is 0 for one run.
        epsilon: mean sample-level ε (max over clients) or None.
        user_epsilon: mean user-level ε or None.
        auc: attack name → mean AUC of that attack (None if not run), for every
            registered attack (:func:`fedsim.audit.available_attacks`), in run order.
        tpr_1pct: mean TPR at 1 % FPR of the strongest attack (by AUC).
        epsilon_lb: mean empirical ε lower bound (the largest of the attacks').
        canary_epsilon: mean of the canary audit's largest ε̂ (None without canaries).
        canary_exceeded: runs whose canary ε̂ exceeded their accountant's ε.
        round_s: mean over runs of the median round time (s).
        wall_s: mean wall time per run (s).
    """

    group: str
    protection: str
    mechanism: str
    runs: int
    accuracy_mean: float
    accuracy_sd: float
    epsilon: float | None
    user_epsilon: float | None
    auc: Mapping[str, float | None]
    tpr_1pct: float | None
    epsilon_lb: float | None
    canary_epsilon: float | None
    canary_exceeded: int
    round_s: float
    wall_s: float

    @property
    def x_epsilon(self) -> float | None:
        """The ε the frontier plots: sample-level if any, else user-level (None: no DP)."""
        return self.epsilon if self.epsilon is not None else self.user_epsilon


def _mechanism(s: RunSummary) -> str:
    name = {
        "none": "no DP",
        "sample": "sample-level DP",
        "user": "user-level DP",
        "both": "sample- and user-level DP",
    }[s.privacy.privacy_mode or "none"]
    if s.num_clients == 1:
        name += ", centralized"
    return name + (" + SecAgg+" if s.privacy.secure_aggregation else "")


def _attacks(s: RunSummary) -> dict[str, AttackResult]:
    """The run's result of each registered attack that ran, in run order."""
    ran = s.audit.attacks if s.audit else ()
    found = {name: next((a for a in ran if a.attack == name), None) for name in available_attacks()}
    return {name: a for name, a in found.items() if a is not None}


def _canary_figures(s: RunSummary) -> dict[str, Any]:
    """A run's canary columns of ``runs.csv`` (each None without canaries).

    ``canary_epsilon`` is the largest ε̂ of the run's canary audits, ``canary_ratio`` its
    ratio to the accountant's ε, ``canary_exceeds`` whether any ε̂ exceeded ε.
    """
    canaries = s.audit.canaries if s.audit else ()
    if not canaries:
        return {"canary_epsilon": None, "canary_ratio": None, "canary_exceeds": None}
    strongest = max(canaries, key=lambda c: c.epsilon_lower_bound)
    return {
        "canary_epsilon": strongest.epsilon_lower_bound,
        "canary_ratio": strongest.ratio,
        "canary_exceeds": any(c.exceeds for c in canaries),
    }


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.fmean(kept) if kept else None


def run_row(entry: dict[str, Any], result: RunResult | None) -> dict[str, Any]:
    """The ``runs.csv`` row of one run: its labels, status and headline figures.

    Args:
        entry: the run's entry in ``sweep.json`` (``run_id``, ``labels``, ``status``, ``error``).
        result: the run as :func:`fedsim.results.load_run` read it (None if not complete).

    Returns:
        Column → value: ``run_id``, the axis labels, ``status`` (and ``error``), then, for a
        complete run, the figures of :func:`fedsim.results.sweep_run_columns`, in its order.
    """
    row: dict[str, Any] = {"run_id": entry["run_id"], **entry["labels"], "status": entry["status"]}
    if entry.get("error"):
        row["error"] = entry["error"]
    if result is None:
        return row
    s, attacks = result.summary, _attacks(result.summary)
    best = max(attacks.values(), key=lambda a: a.auc) if attacks else None
    round_times = [r.round_s for r in result.rounds if r.round > 1] or [
        r.round_s for r in result.rounds if r.round > 0
    ]  # round 1 also starts Ray's workers and loads their data
    figures = {
        "mechanism": _mechanism(s),
        "final_accuracy": s.final_accuracy,
        "epsilon_max": s.privacy.epsilon_max,
        "user_epsilon": s.privacy.user_epsilon,
        "delta": s.privacy.delta,
        **{f"auc_{name}": attacks[name].auc if name in attacks else None for name in available_attacks()},
        "tpr_at_1pct_fpr": best.tpr_at_1pct_fpr if best else None,
        "tpr_at_01pct_fpr": best.tpr_at_01pct_fpr if best else None,
        "epsilon_lower_bound": max(a.epsilon_lower_bound for a in attacks.values()) if attacks else None,
        **_canary_figures(s),
        "rounds_completed": s.rounds_completed,
        "median_round_s": statistics.median(round_times) if round_times else None,
        "wall_s": s.wall_s,
    }
    row.update((k, figures[k]) for k in sweep_run_columns(available_attacks()) if k in figures)
    return row


def axis_value(axis: str, label: str) -> str:
    """How a run's value on an axis is named: ``key=value`` for a scenario key, else the label.

    Example:
        >>> axis_value("privacy.target-epsilon", "3"), axis_value("split", "iid")
        ('target-epsilon=3', 'iid')
    """
    return f"{axis.split('.')[-1]}={label}" if "." in axis else label


def group_of(row: dict[str, Any], axes: list[str], *, sep: str) -> str:
    """A run's name on some axes, e.g. ``"cnn, iid"`` (``"all runs"`` without axes)."""
    return sep.join(axis_value(a, row[a]) for a in axes) or "all runs"


def summarize(rows: list[dict[str, Any]], *, group_axes: list[str], protection_axes: list[str]) -> list[Cell]:
    """Average complete runs over seeds into one :class:`Cell` per (group, protection), in run order."""
    buckets: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        if row["status"] != "complete":
            continue
        group = group_of(row, group_axes, sep=", ")
        protection = group_of(row, protection_axes, sep=" / ")
        buckets.setdefault((group, protection), []).append(row)
    cells = []
    for (group, protection), runs in buckets.items():
        acc = [r["final_accuracy"] for r in runs]
        cells.append(
            Cell(
                group=group,
                protection=protection,
                mechanism=runs[0]["mechanism"],
                runs=len(runs),
                accuracy_mean=statistics.fmean(acc),
                accuracy_sd=statistics.stdev(acc) if len(acc) > 1 else 0.0,
                epsilon=_mean([r["epsilon_max"] for r in runs]),
                user_epsilon=_mean([r["user_epsilon"] for r in runs]),
                auc={name: _mean([r[f"auc_{name}"] for r in runs]) for name in available_attacks()},
                tpr_1pct=_mean([r["tpr_at_1pct_fpr"] for r in runs]),
                epsilon_lb=_mean([r["epsilon_lower_bound"] for r in runs]),
                canary_epsilon=_mean([r["canary_epsilon"] for r in runs]),
                canary_exceeded=sum(bool(r["canary_exceeds"]) for r in runs),
                round_s=_mean([r["median_round_s"] for r in runs]) or 0.0,
                wall_s=statistics.fmean(r["wall_s"] for r in runs),
            )
        )
    return cells


def summary_csv(cells: list[Cell]) -> tuple[list[str], list[list[Any]]]:
    """``summary.csv``'s header and rows, one row per cell.

    Args:
        cells: the cells, in the report's order.

    Returns:
        ``(header, rows)``: one column per :class:`Cell` field (``auc`` as
        ``auc_<attack>`` per registered attack, in run order), then ``x_epsilon``.
    """
    header, attacks = [], available_attacks()
    for f in fields(Cell):
        header += [f"auc_{a}" for a in attacks] if f.name == "auc" else [f.name]
    rows = []
    for c in cells:
        row = []
        for f in fields(Cell):
            row += [c.auc.get(a) for a in attacks] if f.name == "auc" else [getattr(c, f.name)]
        rows.append([*row, c.x_epsilon])
    return [*header, "x_epsilon"], rows
