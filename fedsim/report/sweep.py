"""A sweep's report: every run in one table, the privacy–utility frontier, the cost of each protection.

It reads only what the runs wrote (``sweep.json`` and each run's folder); the
grouping of runs is :mod:`fedsim.report.sweep_data`'s, the Markdown sections
:mod:`fedsim.report.sweep_sections`'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedsim.report.canaries import CanaryPoint, plot_canaries
from fedsim.report.html import write_html
from fedsim.report.sweep_data import SEED_AXIS, Cell, axis_value, group_of, run_row, summarize, summary_csv
from fedsim.report.sweep_plots import plot_audit, plot_frontier, plot_rounds
from fedsim.report.sweep_sections import every_run, failed, figures, groups, intro
from fedsim.report.tuning import read_tuning, tuning_section
from fedsim.results import load_run
from fedsim.results.run_dir import RunDirError, write_csv
from fedsim.results.sweeps import read_sweep_manifest


def _reference(manifest: dict[str, Any], cells: list[Cell], protection_axes: list[str]) -> str | None:
    """The protection the others are compared with: ``sweep.reference``, else the first without DP."""
    ref = manifest.get("reference") or {}
    if ref:
        return " / ".join(axis_value(a, ref.get(a, "")) for a in protection_axes)
    return next((c.protection for c in cells if c.mechanism == "no DP"), None)


def render_sweep_report(sweep_dir: str | Path) -> Path:
    """Write the sweep's ``report.md``, ``report.html``, plots and CSV files.

    Files: ``runs.csv`` (one row per run), ``summary.csv`` (one row per group and
    protection: the numbers the frontier and the tables show), ``frontier.png``,
    ``accuracy_rounds.png``, ``audit.png`` and, when some run planted canaries, ``canaries.png``.

    Pipeline:

    1. read ``sweep.json`` and every complete run (:func:`fedsim.results.load_run`);
    2. average the runs over seeds into cells (:func:`fedsim.report.sweep_data.summarize`);
    3. write the CSV files and the plots;
    4. write ``report.md``, section by section, then ``report.html``.

    Args:
        sweep_dir: a folder written by :func:`fedsim.commands.run_sweep`.

    Returns:
        The path of ``report.md``.

    Raises:
        RunDirError: if ``sweep.json`` is missing or unreadable.
    """
    sweep_dir = Path(sweep_dir)
    manifest = read_sweep_manifest(sweep_dir)  # 1
    axes = manifest["axes"]
    ref_axes = set(manifest.get("reference") or {})
    protection_axes = [a["name"] for a in axes if a["touches_privacy"] or a["name"] in ref_axes]
    group_axes = [a["name"] for a in axes if a["name"] not in protection_axes and a["name"] != SEED_AXIS]
    results, rows = _read_runs(sweep_dir, manifest)
    cells = summarize(rows, group_axes=group_axes, protection_axes=protection_axes)  # 2
    reference = _reference(manifest, cells, protection_axes)
    _write_files(sweep_dir, rows=rows, cells=cells, results=results, axes=(group_axes, protection_axes))  # 3
    title = f"fedsim sweep: {manifest['name']}" + (" (quick)" if manifest.get("quick") else "")
    parts = [  # 4
        *intro(title, rows=rows, axes=axes, group_axes=group_axes, reference=reference),
        *groups(cells, reference),
        *tuning_section(read_tuning(sweep_dir)),
        *failed(rows),
        *figures(canaries=any(r.get("canary_epsilon") is not None for r in rows)),
        *every_run(rows, axes),
    ]
    path = sweep_dir / "report.md"
    text = "\n".join(parts)
    path.write_text(text, encoding="utf-8")
    write_html(text, out_path=sweep_dir / "report.html", base_dir=sweep_dir, title=title)
    return path


def _read_runs(sweep_dir: Path, manifest: dict[str, Any]) -> tuple[dict, list[dict[str, Any]]]:
    """Every run of ``sweep.json``: run id → its result (None if not complete), and its ``runs.csv`` row.

    A run marked complete whose folder cannot be read gets the status ``missing``.
    """
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
    return results, rows


def _write_files(
    sweep_dir: Path, *, rows: list[dict], cells: list[Cell], results: dict, axes: tuple[list, list]
) -> None:
    """Write ``runs.csv``, ``summary.csv`` and the three plots; ``axes`` is (group axes, protection axes)."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    write_csv(sweep_dir / "runs.csv", columns, [[row.get(c) for c in columns] for row in rows])
    write_csv(sweep_dir / "summary.csv", *summary_csv(cells))
    plot_frontier(cells, sweep_dir / "frontier.png")
    group_axes, protection_axes = axes
    plot_rounds(
        rows,
        results=results,
        group_axes=group_axes,
        protection_axes=protection_axes,
        path=sweep_dir / "accuracy_rounds.png",
    )
    plot_audit(cells, sweep_dir / "audit.png")
    points = [
        CanaryPoint(
            group_of(r, protection_axes, sep=" / "),
            r["epsilon_max"],
            r["canary_epsilon"],
            r["canary_exceeds"],
        )
        for r in rows
        if r.get("canary_epsilon") is not None
    ]
    if points:
        plot_canaries(points, sweep_dir / "canaries.png")
