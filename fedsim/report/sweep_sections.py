"""The Markdown sections of a sweep's report (:func:`fedsim.report.sweep.render_sweep_report`).

Every registered attack (:func:`fedsim.audit.available_attacks`) has its AUC
column; a run's figures are its ``runs.csv`` row, a protection's its
:class:`fedsim.report.sweep_data.Cell`.
"""

from __future__ import annotations

from typing import Any

from fedsim.audit.registry import available_attacks, get_attack
from fedsim.report.sweep_data import SEED_AXIS, Cell
from fedsim.report.tables import escape, fmt, table


def _auc_headers() -> list[str]:
    """One column title per registered attack, e.g. ``AUC LiRA``."""
    return [f"AUC {get_attack(name).label}" for name in available_attacks()]


def _leak(c: Cell, reference: Cell) -> str:
    """Each attack's AUC against the reference's, and the ε lower bounds ("" without a common attack)."""
    aucs = [
        f"{name}-attack AUC {c.auc[name]:.3f} against {reference.auc[name]:.3f}"
        for name in available_attacks()
        if c.auc.get(name) is not None and reference.auc.get(name) is not None
    ]
    if not aucs:
        return ""
    return (
        f"; {', '.join(aucs)}"
        f" (empirical ε lower bound {fmt(c.epsilon_lb, 3)} against {fmt(reference.epsilon_lb, 3)})"
    )


def _answers(cells: list[Cell], reference: Cell) -> list[str]:
    """One sentence per protection: accuracy cost, leakage removed and time cost against the reference."""
    lines = []
    for c in cells:
        if c is reference:
            continue
        eps = [f"sample-level ε {c.epsilon:.2f}"] if c.epsilon is not None else []
        eps += [f"user-level ε {c.user_epsilon:.2f}"] if c.user_epsilon is not None else []
        time = (
            f"{c.round_s / reference.round_s:.2f}× the round time ({c.round_s:.2f} s against "
            f"{reference.round_s:.2f} s)"
            if reference.round_s
            else f"round time {c.round_s:.2f} s"
        )
        lines.append(
            f"- **{escape(c.protection)}** ({c.mechanism}{', ' + ', '.join(eps) if eps else ''}): accuracy "
            f"{100 * c.accuracy_mean:.1f} % against {100 * reference.accuracy_mean:.1f} %, "
            f"{100 * (c.accuracy_mean - reference.accuracy_mean):+.1f} points{_leak(c, reference)}; {time}."
        )
    return lines


def _cell_row(c: Cell, reference: Cell | None) -> list[Any]:
    """A cell's row of its group's table (:func:`cell_header`), against the group's reference cell."""
    delta = None if reference is None else f"{100 * (c.accuracy_mean - reference.accuracy_mean):+.1f}"
    ratio = None if reference is None or not reference.round_s else f"{c.round_s / reference.round_s:.2f}"
    return [
        c.protection,
        c.mechanism,
        c.runs,
        f"{100 * c.accuracy_mean:.2f} ± {100 * c.accuracy_sd:.2f}"
        if c.runs > 1
        else f"{100 * c.accuracy_mean:.2f}",
        delta,
        None if c.epsilon is None else f"{c.epsilon:.3f}",
        None if c.user_epsilon is None else f"{c.user_epsilon:.3f}",
        *(None if c.auc.get(name) is None else f"{c.auc[name]:.3f}" for name in available_attacks()),
        None if c.tpr_1pct is None else f"{100 * c.tpr_1pct:.1f} %",
        None if c.epsilon_lb is None else f"{c.epsilon_lb:.2f}",
        _canary_cell(c),
        f"{c.round_s:.2f}",
        ratio,
        f"{c.wall_s:.0f}",
    ]


def _canary_cell(c: Cell) -> str | None:
    """The canary audit's mean ε̂, with how many runs exceeded their ε."""
    if c.canary_epsilon is None:
        return None
    flag = f" ({c.canary_exceeded} of {c.runs} runs above ε)" if c.canary_exceeded else ""
    return f"{c.canary_epsilon:.2f}{flag}"


def cell_header() -> list[str]:
    """The column titles of a group's table (one AUC column per registered attack)."""
    return [
        "protection",
        "mechanism",
        "runs",
        "test accuracy % (mean ± sd)",
        "Δ accuracy (points)",
        "sample ε",
        "user ε",
        *_auc_headers(),
        "TPR @ 1 % FPR",
        "ε lower bound",
        "canary ε̂",
        "round (s)",
        "round time ×",
        "wall (s)",
    ]


def intro(
    title: str, *, rows: list[dict], axes: list[dict], group_axes: list[str], reference: str | None
) -> list[str]:
    """The title, how many runs completed, the axes, and how the tables compare protections.

    Args:
        title: the report's title (plain text; escaped here).
        rows: every run's ``runs.csv`` row.
        axes: the sweep's axes as ``sweep.json`` lists them.
        group_axes: the axes that name a group.
        reference: the protection the others are compared with, or None.
    """
    complete = sum(r["status"] == "complete" for r in rows)
    return [
        f"# {escape(title)}",
        "",
        f"{complete} of {len(rows)} runs complete"
        + ("." if complete == len(rows) else ": **this sweep is incomplete**; rerun it to finish the rest."),
        "",
        "Axes: "
        + "; ".join(f"{escape(a['name'])} ({', '.join(map(escape, a['labels']))})" for a in axes)
        + ".",
        "",
        "Protections (rows) are compared within each group"
        + (f" ({', '.join(map(escape, group_axes))})" if group_axes else "")
        + (f", against **{escape(reference)}**" if reference else "")
        + "; figures are means over "
        + ("seeds (± one standard deviation)." if any(a["name"] == SEED_AXIS for a in axes) else "one run."),
        "Accuracy is the final global model's test accuracy. ε is the accountant's (sample-level: the "
        "largest over clients; δ as in each run). The audit attacks the final global model "
        "(members: clients' training examples; non-members: test examples); its ε lower bound is an "
        "empirical estimate (see a run's report for the method), not a guarantee.",
        "",
    ]


def groups(cells: list[Cell], reference: str | None) -> list[str]:
    """One section per group: its table, and each protection against the reference.

    Args:
        cells: every (group, protection) cell, in run order.
        reference: the protection the others are compared with, or None.
    """
    parts = []
    for group in dict.fromkeys(c.group for c in cells):
        in_group = [c for c in cells if c.group == group]
        ref_cell = next((c for c in in_group if c.protection == reference), None)
        parts += [
            f"## {escape(group)}",
            "",
            table(cell_header(), [_cell_row(c, ref_cell) for c in in_group]),
            "",
        ]
        if ref_cell is not None:
            parts += [
                f"Against **{escape(ref_cell.protection)}** in this group:",
                "",
                *_answers(in_group, ref_cell),
                "",
            ]
    return parts


def failed(rows: list[dict]) -> list[str]:
    """The section "Runs that did not complete" (nothing if every run completed).

    Args:
        rows: every run's ``runs.csv`` row.
    """
    failed = [r for r in rows if r["status"] != "complete"]
    if not failed:
        return []
    return [
        "## Runs that did not complete",
        "",
        *(
            f"- {escape(r['run_id'])}: {r['status']}: {escape(r.get('error') or 'no message')}"
            for r in failed
        ),
        "",
        "Run the same command again to retry them; complete runs are skipped.",
        "",
    ]


def figures(*, canaries: bool) -> list[str]:
    """The sections of the plots (the canary audit's only when some run planted ``canaries``)."""
    canary = [
        "## Canary audit",
        "",
        "![canary audit's ε̂ against the accountant's ε](canaries.png)",
        "",
        "One point per run that planted canaries: the canary audit's largest ε̂ (a lower bound at "
        "the audit's confidence; `runs.csv`'s `canary_epsilon`) against the run's accountant ε "
        "(`epsilon_max`); runs without DP stand at the right edge. A point above the diagonal "
        "(red) leaked more than its ε allows: the mechanism or its accounting is broken.",
        "",
    ]
    return [
        "## Privacy–utility frontier",
        "",
        "![privacy-utility frontier](frontier.png)",
        "",
        "Final accuracy against ε (log scale), one colour per group; error bars: ± one standard "
        "deviation over seeds. Runs without DP are horizontal lines (dashed, dotted, dash-dotted, in "
        "the order of the tables). The points are "
        "`summary.csv`'s `x_epsilon` and `accuracy_mean`.",
        "",
        "## Membership-inference audit",
        "",
        "![audit AUC per protection](audit.png)",
        "",
        *(canary if canaries else []),
        "## Accuracy per round",
        "",
        "![accuracy per round](accuracy_rounds.png)",
        "",
    ]


def every_run(rows: list[dict], axes: list[dict]) -> list[str]:
    """The section "Every run": one table row per run of the sweep.

    Args:
        rows: every run's ``runs.csv`` row.
        axes: the sweep's axes as ``sweep.json`` lists them.
    """
    figures = [
        "epsilon_max",
        "user_epsilon",
        *(f"auc_{a}" for a in available_attacks()),
        "epsilon_lower_bound",
        "canary_epsilon",
    ]
    header = [
        "run",
        *(a["name"] for a in axes),
        "status",
        "accuracy %",
        "sample ε",
        "user ε",
        *_auc_headers(),
        "ε lower bound",
        "canary ε̂",
        "wall (s)",
    ]
    body = [
        [
            r["run_id"],
            *(r[a["name"]] for a in axes),
            r["status"],
            None if r.get("final_accuracy") is None else f"{100 * r['final_accuracy']:.2f}",
            *(None if r.get(k) is None else f"{r[k]:.3f}" for k in figures),
            None if r.get("wall_s") is None else f"{r['wall_s']:.0f}",
        ]
        for r in rows
    ]
    return [
        "## Every run",
        "",
        table(header, body),
        "",
        "Each run's own report is `runs/<run>/report.md`. Machine-readable: `runs.csv` (every run), "
        "`summary.csv` (every group and protection), `sweep.json` (the grid).",
        "",
    ]
