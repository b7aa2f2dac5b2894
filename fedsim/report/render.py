"""The Markdown report of a run directory."""

from __future__ import annotations

from pathlib import Path

from fedsim.data import dataset_info
from fedsim.report.audit import audit_section
from fedsim.report.canaries import canary_section, plot_canaries, run_points
from fedsim.report.html import write_html
from fedsim.report.plots import plot_accuracy_loss, plot_epsilon, plot_partition
from fedsim.report.privacy import privacy_section
from fedsim.report.tables import fmt, table
from fedsim.results import RunResult, RunSummary, load_run

_HEADLINE = [
    "scenario",
    "dataset",
    "model",
    "split",
    "clients",
    "rounds",
    "test accuracy",
    "baseline accuracy",
    "test loss",
    "sample ε (max)",
    "user ε",
    "δ",
    "wall (s)",
]
_ROUNDS = [
    "round",
    "test accuracy",
    "test loss",
    "ε max",
    "ε mean (clients that trained)",
    "clients trained",
    "skipped",
    "failed",
    "round (s)",
]


def render_report(run_dir: str | Path) -> Path:
    """Write ``report.md``, its PNG plots and ``report.html`` into a complete run directory.

    ``report.html`` is the same report as one self-contained file: the plots embedded, every
    string from the scenario or the data escaped (:func:`fedsim.report.html.write_html`).

    Pipeline:

    1. read the run (:func:`fedsim.results.load_run`);
    2. draw its plots;
    3. write ``report.md``, section by section, then ``report.html``.

    Args:
        run_dir: a directory written by :func:`fedsim.results.save_run`.

    Returns:
        The path of ``report.md``.

    Raises:
        fedsim.results.store.RunDirError: if the directory is not a complete run.
    """
    run_dir = Path(run_dir)
    result = load_run(run_dir)  # 1
    plots = _plots(result, run_dir)  # 2
    text = "\n".join(  # 3
        [
            *_overview(result),
            *_privacy_and_audit(result, plots),
            *_clients(result),
            *_environment(result.summary),
        ]
    )
    path = run_dir / "report.md"
    path.write_text(text, encoding="utf-8")
    title = f"fedsim report: {result.summary.scenario}"
    write_html(text, out_path=run_dir / "report.html", base_dir=run_dir, title=title)
    return path


def _plots(result: RunResult, run_dir: Path) -> list[str]:
    """Draw the run's plots into ``run_dir``; return their file names (ε only if some round has one)."""
    plots = ["accuracy_loss.png"]
    plot_accuracy_loss(result, run_dir / "accuracy_loss.png")
    if any(r.epsilon_max is not None or r.user_epsilon is not None for r in result.rounds):
        plot_epsilon(result, run_dir / "epsilon.png")
        plots.append("epsilon.png")
    plot_partition(result, run_dir / "partition.png")
    plots.append("partition.png")
    if points := run_points(result.summary):
        plot_canaries(points, run_dir / "canaries.png")
        plots.append("canaries.png")
    return plots


def _headline(s: RunSummary) -> str:
    """The one-row table of the run's headline figures."""
    p = s.privacy
    user_eps = None
    if p.user_epsilon is not None:
        user_eps = f"{p.user_epsilon:.3f}" + (" (above budget)" if p.user_budget_exceeded else "")
    row = [
        s.scenario,
        s.dataset,
        s.model,
        s.partitioner,
        s.num_clients,
        s.rounds_completed,
        f"{100 * s.final_accuracy:.2f} %",
        None if s.baseline_accuracy is None else f"{100 * s.baseline_accuracy:.2f} %",
        s.final_loss,
        None if p.epsilon_max is None else f"{p.epsilon_max:.3f}",
        user_eps,
        p.delta,
        f"{s.wall_s:.1f}",
    ]
    return table(_HEADLINE, [row])


def _overview(result: RunResult) -> list[str]:
    """The title, the headline table and the section "Accuracy and loss per round"."""
    s = result.summary
    rounds = [
        [
            r.round,
            f"{100 * r.accuracy:.2f} %",
            f"{r.loss:.4f}",
            None if r.epsilon_max is None else f"{r.epsilon_max:.3f}",
            None if r.epsilon_mean is None else f"{r.epsilon_mean:.3f}",
            r.clients_trained,
            r.clients_skipped,
            r.clients_failed,
            f"{r.round_s:.2f}",
        ]
        for r in result.rounds
    ]
    return [
        f"# fedsim report: {fmt(s.scenario)}",
        "",
        *([note, ""] if (note := _validation_note(result)) else []),
        _headline(s),
        "",
        "Baseline accuracy: always predicting the most frequent label (for text, character) "
        "of the test set; a model that learned anything beats it.",
        "",
        "## Accuracy and loss per round",
        "",
        "![accuracy and loss](accuracy_loss.png)",
        "",
        table(_ROUNDS, rounds),
        "",
        *([note, ""] if (note := _evaluation_note(result)) else []),
        *([f"**Stopped early:** {s.stop_reason}.", ""] if s.stop_reason else []),
    ]


def _validation_note(result: RunResult) -> str:
    """A warning that "test" below means the validation split, if ``data.validation-fraction`` is set."""
    fraction = result.scenario.get("data", {}).get("validation-fraction")
    if fraction is None:
        return ""
    return (
        f"**Evaluated on a validation split**: {fmt(100 * fraction)} % of the training examples were held "
        "out (`data.validation-fraction`, as a sweep's tuning trials set it) and the clients trained on "
        'the rest. Every "test" figure and "test set" in this report means that split (accuracy, loss, '
        "baseline, the audit's non-members); the test set itself was not read."
    )


def _evaluation_note(result: RunResult) -> str:
    """Which test examples each round's accuracy is measured on (``evaluation.round-examples``)."""
    sizes = {r.test_examples for r in result.rounds}
    whole = max((n for n in sizes if n is not None), default=None)
    subset = sorted(n for n in sizes if n is not None and n != whole)
    if whole is None:  # saved before fedsim recorded it
        return ""
    if not subset:
        return f"Every round was evaluated on the whole test set ({fmt(whole)} examples), by the server."
    return (
        f"The server evaluated the initial model and the last round on the whole test set "
        f"({fmt(whole)} examples), and the rounds in between on a fixed random subset of "
        f"{fmt(subset[0])} of them (`evaluation.round-examples`), which is faster; their accuracy "
        "is an estimate from that many examples."
    )


def _privacy_and_audit(result: RunResult, plots: list[str]) -> list[str]:
    """The sections "Privacy" and "Membership-inference audit"."""
    return [
        "## Privacy",
        "",
        privacy_section(result),
        *(["![epsilon per round](epsilon.png)", ""] if "epsilon.png" in plots else []),
        "## Membership-inference audit",
        "",
        audit_section(result.summary),
        *canary_section(result.summary, plot="canaries.png" if "canaries.png" in plots else None),
    ]


def _clients(result: RunResult) -> list[str]:
    """The section "Clients and partition"."""
    s = result.summary
    users = s.client_users or [None] * len(result.clients)
    clients = table(
        ["client", "user", "examples", "rounds trained"],
        [
            [c.client, user, c.examples, c.rounds_trained]
            for c, user in zip(result.clients, users, strict=False)
        ],
    )
    return [
        "## Clients and partition",
        "",
        "![label distribution and size per client](partition.png)",
        "",
        f"{s.num_clients} clients hold {fmt(s.train_examples)} training examples "
        f"({fmt(s.partitioner)} split); the test set has {fmt(s.test_examples)}."
        + (f" The server aggregates with `{s.strategy}` (its options: scenario.toml)." if s.strategy else ""),
        "",
        clients,
        "",
        *_classes(result),
    ]


def _classes(result: RunResult) -> list[str]:
    """A table of the training examples per class, by name, and how many clients hold each class."""
    counts = result.label_counts  # (clients, classes)
    names = result.summary.class_names
    if not counts or not names or len(names) > 20 or len(names) != len(counts[0]):
        return []
    if dataset_info(result.summary.dataset).class_names is None:  # text: the names are characters
        return []
    if list(names) == [str(k) for k in range(len(names))]:  # digits: the names are the labels
        return []
    rows = [
        [k, name, sum(c[k] for c in counts), sum(1 for c in counts if c[k])] for k, name in enumerate(names)
    ]
    return [table(["label", "class", "training examples", "clients holding it"], rows), ""]


def _environment(s: RunSummary) -> list[str]:
    """The section "Configuration and environment"."""
    env = s.environment or {}
    return [
        "## Configuration and environment",
        "",
        "Resolved scenario: [scenario.toml](scenario.toml). Machine-readable results: "
        "[summary.json](summary.json), [rounds.csv](rounds.csv), [clients.csv](clients.csv), "
        "[partition.csv](partition.csv).",
        "",
        table(list(env), [list(env.values())]) if env else "",
        "",
    ]
