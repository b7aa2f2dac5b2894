"""The Markdown report of a run directory."""

from __future__ import annotations

from pathlib import Path

from fedsim.report.plots import plot_accuracy_loss, plot_epsilon, plot_partition
from fedsim.results import RunResult, load_run


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value).replace("|", "\\|")  # a cell must not end the Markdown table cell


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _privacy_section(result: RunResult) -> str:
    s = result.summary
    if s.get("privacy_mode") != "sample":
        return (
            "No differential privacy: clients trained with plain SGD, so no ε bound "
            "holds for any example or client.\n"
        )
    sigmas = sorted({c.noise_multiplier for c in result.clients if c.noise_multiplier is not None})
    sigma = f"{sigmas[0]:.4g}" if len(sigmas) == 1 else f"{sigmas[0]:.4g} to {sigmas[-1]:.4g}"
    return (
        f"Sample-level DP-SGD (Opacus) on every client: max grad norm {_fmt(s['max_grad_norm'])}, "
        f"noise multiplier {sigma}, Poisson sampling. ε is composed per client over every round it "
        f"trained with the Opacus **{s['accountant'].upper()}** accountant at δ = {s['delta']:g}.\n\n"
        f"**Run ε (max over clients): {_fmt(s['epsilon_max'])}** (target {_fmt(s['target_epsilon'])}, "
        f"mean {_fmt(s['epsilon_mean'])}).\n\n"
        "What it protects: any single training example of a client (add/remove-one neighbouring "
        "relation on that client's data set). It does not bound what the model reveals about a "
        "client's data set as a whole (that is user-level DP).\n"
    )


def render_report(run_dir: str | Path) -> Path:
    """Write ``report.md`` and its PNG plots into a complete run directory.

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
    if any(r.epsilon_max is not None for r in result.rounds):
        plot_epsilon(result, run_dir / "epsilon.png")
        plots.append("epsilon.png")
    plot_partition(result, run_dir / "partition.png")
    plots.append("partition.png")

    headline = _table(
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
            "ε (max)",
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
                s["epsilon_max"],
                s["delta"],
                f"{s['wall_s']:.1f}",
            ]
        ],
    )
    rounds = _table(
        [
            "round",
            "test accuracy",
            "test loss",
            "ε max",
            "ε mean (clients that trained)",
            "clients trained",
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
                r.clients_failed,
                f"{r.round_s:.2f}",
            ]
            for r in result.rounds
        ],
    )
    users = s.get("client_users") or [None] * len(result.clients)
    clients = _table(
        ["client", "user", "examples", "rounds trained", "ε", "noise multiplier", "sample rate"],
        [
            [c.client, user, c.examples, c.rounds_trained, c.epsilon, c.noise_multiplier, c.sample_rate]
            for c, user in zip(result.clients, users, strict=False)
        ],
    )
    env = s.get("environment", {})
    text = "\n".join(
        [
            f"# fedsim report: {s['scenario']}",
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
            "## Privacy",
            "",
            _privacy_section(result),
            *(["![epsilon per round](epsilon.png)", ""] if "epsilon.png" in plots else []),
            "## Clients and partition",
            "",
            "![label distribution and size per client](partition.png)",
            "",
            f"{s['num_clients']} clients hold {_fmt(s.get('train_examples'))} training examples "
            f"({s['partitioner']} split); the test set has {_fmt(s.get('test_examples'))}.",
            "",
            clients,
            "",
            "## Configuration and environment",
            "",
            "Resolved scenario: [scenario.toml](scenario.toml). Machine-readable results: "
            "[summary.json](summary.json), [rounds.csv](rounds.csv), [clients.csv](clients.csv), "
            "[partition.csv](partition.csv).",
            "",
            _table(list(env), [list(env.values())]) if env else "",
            "",
        ]
    )
    path = run_dir / "report.md"
    path.write_text(text, encoding="utf-8")
    return path
