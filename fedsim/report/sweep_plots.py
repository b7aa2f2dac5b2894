"""PNG plots of a sweep (matplotlib, Agg backend): frontier, audit and accuracy per round."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from fedsim.audit.registry import available_attacks, get_attack  # noqa: E402
from fedsim.report.plots import plain_text, save_figure  # noqa: E402
from fedsim.report.sweep_data import Cell, group_of  # noqa: E402

_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]


def _colours(groups: list[str]) -> dict[str, Any]:
    """One tab10 colour per group, in order."""
    cmap = plt.get_cmap("tab10")
    return {g: cmap(i % 10) for i, g in enumerate(groups)}


@plain_text
def plot_frontier(cells: list[Cell], path: Path) -> Path:
    """Final accuracy against ε, one colour per group, one marker per mechanism.

    Args:
        cells: :class:`fedsim.report.sweep_data.Cell` objects; cells with an ε are points
            (runs of one mechanism joined by a line, sorted by ε), cells without one are
            horizontal reference lines (dashed, dotted, dash-dotted).
        path: the PNG to write.

    Returns:
        ``path``.
    """
    groups = list(dict.fromkeys(c.group for c in cells))
    colours = _colours(groups)
    mechanisms = list(dict.fromkeys(c.mechanism for c in cells if c.x_epsilon is not None))
    markers = {m: _MARKERS[i % len(_MARKERS)] for i, m in enumerate(mechanisms)}
    fig, ax = plt.subplots(figsize=(12, 5.5))
    has_points = False
    for group in groups:
        in_group = [c for c in cells if c.group == group]
        for mechanism in mechanisms:
            pts = [c for c in in_group if c.mechanism == mechanism and c.x_epsilon is not None]
            if pts:
                _frontier_line(ax, pts, colour=colours[group], marker=markers[mechanism])
                has_points = True
        references = [c for c in in_group if c.x_epsilon is None]
        for c, style in zip(references, itertools.cycle(["--", ":", "-."]), strict=False):
            ax.axhline(
                100 * c.accuracy_mean,
                color=colours[group],
                linestyle=style,
                linewidth=1,
                label=f"{group}: {c.protection} ({c.mechanism})",
            )
    if has_points:
        ax.set_xscale("log")
        plain = FuncFormatter(lambda value, _: f"{value:g}")  # mathtext is off: no "$10^{0}$" labels
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(plain)
    ax.set(
        xlabel="ε (accountant; sample-level, else user-level)",
        ylabel="final test accuracy (%)",
        title="Privacy–utility frontier",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return save_figure(fig, path)


def _frontier_line(ax, cells: list[Cell], *, colour, marker: str) -> None:
    """One group's cells of one mechanism: points sorted by ε with error bars, named by protection."""
    pts = sorted(cells, key=lambda c: c.x_epsilon)
    ax.errorbar(
        [c.x_epsilon for c in pts],
        [100 * c.accuracy_mean for c in pts],
        yerr=[100 * c.accuracy_sd for c in pts],
        color=colour,
        marker=marker,
        linestyle="-" if len(pts) > 1 else "none",
        capsize=3,
        label=f"{pts[0].group}: {pts[0].mechanism}",
    )
    for c in pts:
        ax.annotate(
            c.protection,
            (c.x_epsilon, 100 * c.accuracy_mean),
            fontsize=7,
            textcoords="offset points",
            xytext=(4, 4),
            color=colour,
        )


@plain_text
def plot_audit(cells: list[Cell], path: Path) -> Path:
    """Membership-inference AUC per protection, one bar per attack that ran, one panel per group.

    Args:
        cells: :class:`fedsim.report.sweep_data.Cell` objects.
        path: the PNG to write.

    Returns:
        ``path``.
    """
    groups = list(dict.fromkeys(c.group for c in cells)) or ["all runs"]
    fig, axes = plt.subplots(1, len(groups), figsize=(max(5, 3.2 * len(groups)), 4), squeeze=False)
    attacks = available_attacks()
    for ax, group in zip(axes[0], groups, strict=True):
        in_group = [c for c in cells if c.group == group]
        x = np.arange(len(in_group))
        aucs = {
            name: [c.auc.get(name) if c.auc.get(name) is not None else math.nan for c in in_group]
            for name in attacks
        }
        shown = [name for name in attacks if any(not math.isnan(v) for v in aucs[name])] or list(attacks[:1])
        width = 0.8 / len(shown)
        for i, name in enumerate(shown):
            offset = (i - (len(shown) - 1) / 2) * width
            ax.bar(x + offset, aucs[name], width=width, label=get_attack(name).label)
        ax.axhline(0.5, color="gray", linestyle="--", linewidth=1)
        ax.set_xticks(x, [c.protection for c in in_group], rotation=45, ha="right", fontsize=7)
        ax.set(title=group, ylabel="attack AUC (0.5 = guessing)", ylim=(0.4, 1.0))
        ax.legend(fontsize=7)
    return save_figure(fig, path)


@plain_text
def plot_rounds(
    rows: list[dict], *, results: dict, group_axes: list[str], protection_axes: list[str], path: Path
) -> Path:
    """Test accuracy per round, one panel per group, one line per protection (mean over seeds).

    Args:
        rows: ``runs.csv`` rows (:func:`fedsim.report.sweep_data.run_row`).
        results: run id → its loaded :class:`fedsim.results.RunResult` (None if not complete).
        group_axes: the axes that name a panel.
        protection_axes: the axes that name a line.
        path: the PNG to write.
    """
    complete = [r for r in rows if r["status"] == "complete" and results.get(r["run_id"]) is not None]
    groups = list(dict.fromkeys(group_of(r, group_axes, sep=", ") for r in complete))
    groups = groups or ["all runs"]
    fig, axes = plt.subplots(1, len(groups), figsize=(max(5, 3.6 * len(groups)), 3.8), squeeze=False)
    for ax, group in zip(axes[0], groups, strict=True):
        lines: dict[str, list] = {}
        for r in complete:
            if group_of(r, group_axes, sep=", ") == group:
                lines.setdefault(group_of(r, protection_axes, sep=" / "), []).append(
                    results[r["run_id"]].rounds
                )
        for label, runs in lines.items():
            length = min(len(rs) for rs in runs)
            acc = np.array([[100 * rec.accuracy for rec in rs[:length]] for rs in runs])
            ax.plot([rec.round for rec in runs[0][:length]], acc.mean(axis=0), marker=".", label=label)
        ax.set(title=group, xlabel="round", ylabel="test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save_figure(fig, path)
