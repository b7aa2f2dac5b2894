"""The Markdown report of a run directory."""

from __future__ import annotations

from pathlib import Path

from fedsim.report.audit import audit_section
from fedsim.report.html import write_html
from fedsim.report.plots import plot_accuracy_loss, plot_epsilon, plot_partition
from fedsim.report.privacy import privacy_section
from fedsim.report.tables import fmt, table
from fedsim.results import load_run


def render_report(run_dir: str | Path) -> Path:
    """Write ``report.md``, its PNG plots and ``report.html`` into a complete run directory.

    ``report.html`` is the same report as one self-contained file: the plots embedded, every
    string from the scenario or the data escaped (:func:`fedsim.report.html.write_html`).

    Args:
        run_dir: a directory written by :func:`fedsim.results.save_run`.

    Returns:
        The path of ``report.md``.

    Raises:
        fedsim.results.store.RunDirError: if the directory is not a complete run.
    """
    run_dir = Path(run_dir)
    result = load_run(run_dir)
    s = result.summary
    plots = ["accuracy_loss.png"]
    plot_accuracy_loss(result, run_dir / "accuracy_loss.png")
    if any(r.epsilon_max is not None or r.user_epsilon is not None for r in result.rounds):
        plot_epsilon(result, run_dir / "epsilon.png")
        plots.append("epsilon.png")
    plot_partition(result, run_dir / "partition.png")
    plots.append("partition.png")

    headline = table(
        [
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
        ],
        [
            [
                s["scenario"],
                s["dataset"],
                s["model"],
                s["partitioner"],
                s["num_clients"],
                s["rounds_completed"],
                f"{100 * s['final_accuracy']:.2f} %",
                None if s.get("baseline_accuracy") is None else f"{100 * s['baseline_accuracy']:.2f} %",
                s["final_loss"],
                None if s["epsilon_max"] is None else f"{s['epsilon_max']:.3f}",
                None
                if s.get("user_epsilon") is None
                else f"{s['user_epsilon']:.3f}"
                + (" (above budget)" if s.get("user_budget_exceeded") else ""),
                s["delta"],
                f"{s['wall_s']:.1f}",
            ]
        ],
    )
    rounds = table(
        [
            "round",
            "test accuracy",
            "test loss",
            "ε max",
            "ε mean (clients that trained)",
            "clients trained",
            "skipped",
            "failed",
            "round (s)",
        ],
        [
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
        ],
    )
    users = s.get("client_users") or [None] * len(result.clients)
    clients = table(
        ["client", "user", "examples", "rounds trained"],
        [
            [c.client, user, c.examples, c.rounds_trained]
            for c, user in zip(result.clients, users, strict=False)
        ],
    )
    env = s.get("environment", {})
    text = "\n".join(
        [
            f"# fedsim report: {fmt(s['scenario'])}",
            "",
            headline,
            "",
            "Baseline accuracy: always predicting the most frequent label (for text, character) "
            "of the test set; a model that learned anything beats it.",
            "",
            "## Accuracy and loss per round",
            "",
            "![accuracy and loss](accuracy_loss.png)",
            "",
            rounds,
            "",
            *([f"**Stopped early:** {s['stop_reason']}.", ""] if s.get("stop_reason") else []),
            "## Privacy",
            "",
            privacy_section(result),
            *(["![epsilon per round](epsilon.png)", ""] if "epsilon.png" in plots else []),
            "## Membership-inference audit",
            "",
            audit_section(s),
            "## Clients and partition",
            "",
            "![label distribution and size per client](partition.png)",
            "",
            f"{s['num_clients']} clients hold {fmt(s.get('train_examples'))} training examples "
            f"({fmt(s['partitioner'])} split); the test set has {fmt(s.get('test_examples'))}.",
            "",
            clients,
            "",
            "## Configuration and environment",
            "",
            "Resolved scenario: [scenario.toml](scenario.toml). Machine-readable results: "
            "[summary.json](summary.json), [rounds.csv](rounds.csv), [clients.csv](clients.csv), "
            "[partition.csv](partition.csv).",
            "",
            table(list(env), [list(env.values())]) if env else "",
            "",
        ]
    )
    path = run_dir / "report.md"
    path.write_text(text, encoding="utf-8")
    write_html(
        text, out_path=run_dir / "report.html", base_dir=run_dir, title=f"fedsim report: {s['scenario']}"
    )
    return path
