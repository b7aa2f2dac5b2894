"""The canary audit in reports: ε̂ beside the accountant's ε, a flag when ε̂ exceeds it, and the ε̂-vs-ε plot."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fedsim.report.plots import plain_text, save_figure  # noqa: E402
from fedsim.report.tables import table  # noqa: E402
from fedsim.results import CanaryResult, RunSummary  # noqa: E402

_HEADER = ["canaries", "threat model", "planted (in)", "guesses", "correct", "ε̂", "accountant ε", "ε̂/ε", ""]
_METHOD = (
    "Each canary is included by a fair coin in one client's training data; the auditor scores "
    'every canary, guesses "in" for the highest scores and "out" for the lowest, and turns the '
    'correct guesses into ε̂ with Theorem 5.2 of Steinke, Nasr and Jagielski 2023, "Privacy '
    'Auditing with One (1) Training Run" (https://arxiv.org/abs/2305.08846), its δ term included, '
    "at δ {delta:g}. The bounds hold together with confidence {joint:g} (each row at {each:g}; the "
    "guess counts tried share it too, by Bonferroni)."
)
_KINDS = {
    "dirac": (
        "**dirac** (white box): a per-example gradient that is zero except at one coordinate of the "
        "model's weights, where it equals `audit.canary-norm` (by default the clipping norm; 10 "
        "without DP-SGD), sampled in each step like an example and added before the noise. Scored "
        "by how far the final model, or the sum of its client's updates over the rounds it trained, "
        "moved against it. These canaries are not examples: the test set does not change."
    ),
    "mislabelled": (
        "**mislabelled** (black box): a test example with a wrong label, trained on like any other "
        "example of its client; scored by minus the final global model's loss on it (Yeom et al. "
        "2018, https://arxiv.org/abs/1709.01604). These canaries are held out of evaluation."
    ),
}


@dataclass(frozen=True)
class CanaryPoint:
    """One point of the ε̂-vs-ε plot.

    Attributes:
        label: the legend entry (a threat model, or a sweep's protection).
        epsilon: the accountant's ε, or None without DP (drawn right of the others).
        estimate: ε̂.
        exceeds: ε̂ > ε (drawn in red).
    """

    label: str
    epsilon: float | None
    estimate: float
    exceeds: bool


def _row(c: CanaryResult) -> list:
    flag = "ε̂ > ε: broken mechanism or accounting" if c.exceeds else None
    return [
        c.attack,
        c.threat_model,
        f"{c.canaries} ({c.included})",
        c.guesses,
        c.correct,
        f"{c.epsilon_lower_bound:.3f}",
        None if c.epsilon is None else f"{c.epsilon:.3f}",
        None if c.ratio is None else f"{c.ratio:.2f}",
        flag,
    ]


def canary_section(summary: RunSummary, *, plot: str | None) -> list[str]:
    """Markdown lines of the run report's canary audit (none without canaries).

    Args:
        summary: the run's summary.
        plot: the file name of the ε̂-vs-ε plot, or None.
    """
    canaries = summary.audit.canaries if summary.audit else ()
    if not canaries:
        return []
    each = canaries[0].confidence
    joint = 1 - (1 - each) * len(canaries)
    kinds = dict.fromkeys(c.attack for c in canaries)
    lines = [
        "### Canary audit (one run)",
        "",
        table(_HEADER, [_row(c) for c in canaries]),
        "",
        _METHOD.format(delta=canaries[0].delta, joint=joint, each=each),
        *(f"\n- {_KINDS[k]}" for k in kinds if k in _KINDS),
    ]
    held_out = next((c.canaries for c in canaries if c.attack == "mislabelled"), None)
    if held_out:
        lines += [
            "",
            f"{held_out} test examples were drawn as mislabelled canaries and held out of evaluation: "
            f"the accuracy figures are on the other {summary.test_examples}.",
        ]
    if any(c.exceeds for c in canaries):
        lines += [
            "",
            "**ε̂ exceeds the accountant's ε.** The canaries leaked more than the ε this run reports "
            "allows: either the noise added is less than the ledger records, or the accounting is "
            f"wrong. A bound this high happens by chance with probability at most "
            f"{1 - canaries[0].confidence:.3g}.",
        ]
    if canaries[0].epsilon is None:
        lines += ["", "Without DP there is no accountant ε: ε̂ shows how much the canaries leaked."]
    if plot:
        lines += ["", f"![ε̂ against the accountant's ε]({plot})"]
    return [*lines, ""]


def run_points(summary: RunSummary) -> list[CanaryPoint]:
    """The plot's points of one run: one per threat model."""
    canaries = summary.audit.canaries if summary.audit else ()
    return [CanaryPoint(c.threat_model, c.epsilon, c.epsilon_lower_bound, c.exceeds) for c in canaries]


@plain_text
def plot_canaries(points: list[CanaryPoint], path: Path) -> Path:
    """ε̂ against the accountant's ε with the diagonal ε̂ = ε; runs without DP at the right edge.

    A point above the diagonal (red) is an audit that caught more leakage than
    the accountant allows.

    Args:
        points: the points, e.g. :func:`run_points`, or one per run of a sweep.
        path: the PNG to write.

    Returns:
        ``path``.
    """
    finite = [p.epsilon for p in points if p.epsilon is not None and math.isfinite(p.epsilon)]
    top = max([*finite, *(p.estimate for p in points), 1.0])
    no_dp = top * 1.25
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.plot([0, top * 1.1], [0, top * 1.1], color="gray", linestyle="--", linewidth=1, label="ε̂ = ε")
    labels = list(dict.fromkeys(p.label for p in points))
    markers = "osD^v<>P*X"
    for i, label in enumerate(labels):
        mine = [p for p in points if p.label == label]
        xs = [p.epsilon if p.epsilon is not None else no_dp for p in mine]
        colours = ["red" if p.exceeds else f"C{i}" for p in mine]
        ax.scatter(xs, [p.estimate for p in mine], c=colours, marker=markers[i % len(markers)], label=label)
    if any(p.epsilon is None for p in points):
        ax.axvline(no_dp, color="lightgray", linewidth=8, alpha=0.4, zorder=0)
        ax.annotate("no DP", (no_dp, 0), ha="center", va="bottom", fontsize=8)
    ax.set(xlabel="accountant's ε", ylabel="canary audit's ε̂ (lower bound)", xlim=(0, no_dp * 1.08))
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)
    ax.set_title("Leakage the canaries show against the ε claimed")
    return save_figure(fig, path)
