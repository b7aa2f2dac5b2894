"""fedsim command line: run a scenario (fedsim run FILE) or re-render a report (fedsim report DIR).

Exit codes: 0 success; 2 bad input (scenario file, ``--set``, output folder,
missing data or resources), with a one-line-per-problem message and no
traceback; 1 a run that failed while running.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


def _error(errors: Console, err: object, prefix: str = "") -> None:
    """Print each line of an error message as its own ``error:`` line (on stderr)."""
    for line in str(err).splitlines() or [type(err).__name__]:
        errors.print(f"[red]error:[/red] {escape(prefix + line)}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fedsim", description="fedsim: privacy-preserving federated learning simulator."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a scenario and write its report")
    run.add_argument("scenario", type=Path, help="scenario TOML file")
    run.add_argument("--out", type=Path, help="output folder (default: reports/<scenario name>)")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one key, e.g. --set federation.rounds=2 (repeatable)",
    )
    run.add_argument("--verbose", action="store_true", help="show Flower and Ray logs and tracebacks")
    report = commands.add_parser("report", help="re-render report.md of a finished run")
    report.add_argument("run_dir", type=Path)
    return parser


def _run(args: argparse.Namespace, console: Console, errors: Console) -> int:
    from fedsim.simulation.scenario import ScenarioError, load_scenario

    try:
        scenario = load_scenario(args.scenario, args.overrides)
    except ScenarioError as err:
        _error(errors, err)
        return EXIT_BAD_INPUT
    out_dir = args.out or Path("reports") / scenario.name

    from fedsim.report import render_report
    from fedsim.results import save_run
    from fedsim.results.store import RunDirError, check_writable_run_dir
    from fedsim.simulation.run import ConfigurationError, run_scenario

    try:
        check_writable_run_dir(out_dir)
    except RunDirError as err:
        _error(errors, err)
        return EXIT_BAD_INPUT
    f, p = scenario.federation, scenario.privacy
    privacy = describe_privacy(p)
    console.print(
        f"[bold]{scenario.name}[/bold]: {scenario.data.dataset}, {scenario.model.name}, "
        f"{f.num_clients} clients ({scenario.data.partitioner}), {f.rounds} rounds, {escape(privacy)}",
        highlight=False,
    )

    def on_round(record) -> None:
        eps = f"  ε_max {record.epsilon_max:.3f}" if record.epsilon_max is not None else ""
        eps += f"  user ε {record.user_epsilon:.3f}" if record.user_epsilon is not None else ""
        eps += f"  skipped {record.clients_skipped}" if record.clients_skipped else ""
        label = "initial" if record.round == 0 else f"round {record.round}/{f.rounds}"
        console.print(
            f"  {label:>13}  accuracy {100 * record.accuracy:6.2f} %  loss {record.loss:.4f}{eps}"
            f"  clients {record.clients_trained}  {record.round_s:.1f} s",
            highlight=False,
        )

    try:
        result = run_scenario(scenario, verbose=args.verbose, on_round=on_round)
    except ConfigurationError as err:
        _error(errors, err, prefix=f"{args.scenario}: ")
        return EXIT_BAD_INPUT
    except Exception as err:  # noqa: BLE001 - any failure while running: no traceback unless --verbose
        if args.verbose:
            errors.print_exception()
        _error(errors, err, prefix="the run failed: ")
        errors.print("nothing was written; rerun with --verbose for Flower's and Ray's logs")
        return EXIT_FAILED
    try:
        save_run(result, out_dir)
        report = render_report(out_dir)
    except (OSError, RunDirError) as err:
        _error(errors, err, prefix="could not write the results: ")
        return EXIT_FAILED
    s = result.summary
    eps = f", ε {s['epsilon_max']:.3f}" if s["epsilon_max"] is not None else ""
    eps += f", user-level ε {s['user_epsilon']:.3f}" if s.get("user_epsilon") is not None else ""
    eps += f" (δ {s['delta']:g})" if eps else ""
    if s.get("stop_reason"):
        console.print(f"stopped early: {s['stop_reason']}", highlight=False)
    if s.get("user_budget_exceeded"):
        console.print(
            f"warning: user-level ε {s['user_epsilon']:.3f} is above privacy.user-target-epsilon = "
            f"{s['user_target_epsilon']:g} (clients failed during a round; see the report's Privacy section)",
            highlight=False,
        )
    if s.get("diverged"):
        console.print("warning: training diverged (the test loss is not finite); lower the learning rate")
    console.print(
        f"done in {s['wall_s']:.1f} s: test accuracy {100 * s['final_accuracy']:.2f} % "
        f"(baseline {100 * s['baseline_accuracy']:.2f} %){eps}\n"
        f"report: {report}",
        highlight=False,
    )
    return 0


def describe_privacy(p) -> str:
    """One line naming a scenario's privacy protections (the ``[privacy]`` section).

    Example:
        >>> from fedsim.simulation.sections import PrivacySection
        >>> describe_privacy(PrivacySection.model_validate({"mode": "none"}))
        'no DP'
    """
    parts = []
    if p.mode in ("sample", "both"):
        if p.tiers:
            noise = "tiers " + "/".join(f"ε {t.target_epsilon:g}" for t in p.tiers)
        else:
            noise = f"ε {p.target_epsilon:g}" if p.target_epsilon is not None else f"σ {p.noise_multiplier:g}"
        parts.append(f"sample-level DP ({noise}, δ {p.target_delta:g})")
    if p.mode in ("user", "both"):
        noise = (
            f"z {p.user_noise_multiplier:g}"
            if p.user_noise_multiplier is not None
            else f"ε {p.user_target_epsilon:g}"
        )
        parts.append(f"user-level DP ({noise}, {p.clipping} clipping on the {p.clip_on})")
    if p.secure_aggregation:
        parts.append("SecAgg+")
    return " + ".join(parts) or "no DP"


def _report(args: argparse.Namespace, console: Console, errors: Console) -> int:
    from fedsim.report import render_report
    from fedsim.results.store import RunDirError

    try:
        path = render_report(args.run_dir)
    except RunDirError as err:
        _error(errors, err)
        return EXIT_BAD_INPUT
    console.print(f"report: {path}", highlight=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fedsim`` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    console = Console(soft_wrap=True, highlight=False)
    errors = Console(stderr=True, soft_wrap=True, highlight=False)
    handler = {"run": _run, "report": _report}[args.command]
    return handler(args, console, errors)


if __name__ == "__main__":
    sys.exit(main())
