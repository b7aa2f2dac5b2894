"""A sweep's report: every run in one table, the privacy–utility frontier, the cost of each protection.

It reads only what the runs wrote (``sweep.json`` and each run's folder); the
grouping of runs is :mod:`fedsim.report.sweep_data`'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedsim.report.html import write_html
from fedsim.report.sweep_data import SEED_AXIS, Cell, axis_value, run_row, summarize
from fedsim.report.sweep_plots import plot_audit, plot_frontier, plot_rounds
from fedsim.report.tables import escape, fmt, table
from fedsim.results import load_run
from fedsim.results.store import RunDirError, write_csv
from fedsim.results.sweeps import read_sweep_manifest


def _reference(manifest: dict[str, Any], cells: list[Cell], protection_axes: list[str]) -> str | None:
    """The protection the others are compared with: ``sweep.reference``, else the first without DP."""
    ref = manifest.get("reference") or {}
    if ref:
        return " / ".join(axis_value(a, ref.get(a, "")) for a in protection_axes)
    return next((c.protection for c in cells if c.mechanism == "no DP"), None)


def _answers(cells: list[Cell], reference: Cell) -> list[str]:
    """One sentence per protection: accuracy cost, leakage removed and time cost against the reference."""
    lines = []
    for c in cells:
        if c is reference:
            continue
        eps = [f"sample-level ε {c.epsilon:.2f}"] if c.epsilon is not None else []
        eps += [f"user-level ε {c.user_epsilon:.2f}"] if c.user_epsilon is not None else []
        leak = ""
        if c.auc_loss is not None and reference.auc_loss is not None:
            leak = (
                f"; loss-attack AUC {c.auc_loss:.3f} against {reference.auc_loss:.3f}"
                f" (empirical ε lower bound {fmt(c.epsilon_lb, 3)} against {fmt(reference.epsilon_lb, 3)})"
            )
        time = (
            f"{c.round_s / reference.round_s:.2f}× the round time ({c.round_s:.2f} s against "
            f"{reference.round_s:.2f} s)"
            if reference.round_s
            else f"round time {c.round_s:.2f} s"
        )
        lines.append(
            f"- **{escape(c.protection)}** ({c.mechanism}{', ' + ', '.join(eps) if eps else ''}): accuracy "
            f"{100 * c.accuracy_mean:.1f} % against {100 * reference.accuracy_mean:.1f} %, "
            f"{100 * (c.accuracy_mean - reference.accuracy_mean):+.1f} points{leak}; {time}."
        )
    return lines


def _cell_row(c: Cell, reference: Cell | None) -> list[Any]:
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
        None if c.auc_loss is None else f"{c.auc_loss:.3f}",
        None if c.auc_lira is None else f"{c.auc_lira:.3f}",
        None if c.tpr_1pct is None else f"{100 * c.tpr_1pct:.1f} %",
        None if c.epsilon_lb is None else f"{c.epsilon_lb:.2f}",
        f"{c.round_s:.2f}",
        ratio,
        f"{c.wall_s:.0f}",
    ]


CELL_HEADER = [
    "protection",
    "mechanism",
    "runs",
    "test accuracy % (mean ± sd)",
    "Δ accuracy (points)",
    "sample ε",
    "user ε",
    "AUC loss attack",
    "AUC LiRA",
    "TPR @ 1 % FPR",
    "ε lower bound",
    "round (s)",
    "round time ×",
    "wall (s)",
]


def render_sweep_report(sweep_dir: str | Path) -> Path:
    """Write the sweep's ``report.md``, ``report.html``, plots and CSV files.

    Files: ``runs.csv`` (one row per run), ``summary.csv`` (one row per group and
    protection: the numbers the frontier and the tables show), ``frontier.png``,
    ``accuracy_rounds.png`` and ``audit.png``.

    Args:
        sweep_dir: a folder written by :func:`fedsim.runner.run_sweep`.

    Returns:
        The path of ``report.md``.

    Raises:
        RunDirError: if ``sweep.json`` is missing or unreadable.
    """
    sweep_dir = Path(sweep_dir)
    manifest = read_sweep_manifest(sweep_dir)
    axes = manifest["axes"]
    ref_axes = set(manifest.get("reference") or {})
    protection_axes = [a["name"] for a in axes if a["touches_privacy"] or a["name"] in ref_axes]
    group_axes = [a["name"] for a in axes if a["name"] not in protection_axes and a["name"] != SEED_AXIS]
    results, rows = {}, []
    for entry in manifest["runs"]:
        result = None
        if entry["status"] == "complete":
            try:
                result = load_run(sweep_dir / entry["dir"])
            except RunDirError:
                entry = {**entry, "status": "missing"}
        results[entry["run_id"]] = result
        rows.append(run_row(entry, result))
    cells = summarize(rows, group_axes=group_axes, protection_axes=protection_axes)
    reference = _reference(manifest, cells, protection_axes)

    columns = list(dict.fromkeys(k for row in rows for k in row))
    write_csv(sweep_dir / "runs.csv", columns, [[row.get(c) for c in columns] for row in rows])
    cell_fields = list(Cell.__dataclass_fields__)
    write_csv(
        sweep_dir / "summary.csv",
        [*cell_fields, "x_epsilon"],
        [[getattr(c, f) for f in cell_fields] + [c.x_epsilon] for c in cells],
    )
    plot_frontier(cells, sweep_dir / "frontier.png")
    plot_rounds(
        rows,
        results=results,
        group_axes=group_axes,
        protection_axes=protection_axes,
        path=sweep_dir / "accuracy_rounds.png",
    )
    plot_audit(cells, sweep_dir / "audit.png")

    complete = sum(r["status"] == "complete" for r in rows)
    title = f"fedsim sweep: {manifest['name']}" + (" (quick)" if manifest.get("quick") else "")
    parts = [
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
    for group in dict.fromkeys(c.group for c in cells):
        in_group = [c for c in cells if c.group == group]
        ref_cell = next((c for c in in_group if c.protection == reference), None)
        parts += [
            f"## {escape(group)}",
            "",
            table(CELL_HEADER, [_cell_row(c, ref_cell) for c in in_group]),
            "",
        ]
        if ref_cell is not None:
            parts += [
                f"Against **{escape(ref_cell.protection)}** in this group:",
                "",
                *_answers(in_group, ref_cell),
                "",
            ]
    failed = [r for r in rows if r["status"] != "complete"]
    if failed:
        parts += ["## Runs that did not complete", ""]
        parts += [
            f"- {escape(r['run_id'])}: {r['status']}: {escape(r.get('error') or 'no message')}"
            for r in failed
        ]
        parts += ["", "Run the same command again to retry them; complete runs are skipped.", ""]
    parts += [
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
        "## Accuracy per round",
        "",
        "![accuracy per round](accuracy_rounds.png)",
        "",
        "## Every run",
        "",
        table(
            [
                "run",
                *(a["name"] for a in axes),
                "status",
                "accuracy %",
                "sample ε",
                "user ε",
                "AUC loss",
                "AUC LiRA",
                "ε lower bound",
                "wall (s)",
            ],
            [
                [
                    r["run_id"],
                    *(r[a["name"]] for a in axes),
                    r["status"],
                    None if r.get("final_accuracy") is None else f"{100 * r['final_accuracy']:.2f}",
                    *(
                        None if r.get(k) is None else f"{r[k]:.3f}"
                        for k in (
                            "epsilon_max",
                            "user_epsilon",
                            "auc_loss",
                            "auc_lira",
                            "epsilon_lower_bound",
                        )
                    ),
                    None if r.get("wall_s") is None else f"{r['wall_s']:.0f}",
                ]
                for r in rows
            ],
        ),
        "",
        "Each run's own report is `runs/<run>/report.md`. Machine-readable: `runs.csv` (every run), "
        "`summary.csv` (every group and protection), `sweep.json` (the grid).",
        "",
    ]
    path = sweep_dir / "report.md"
    text = "\n".join(parts)
    path.write_text(text, encoding="utf-8")
    write_html(text, out_path=sweep_dir / "report.html", base_dir=sweep_dir, title=title)
    return path
