"""fedsim command line: run a scenario or sweep, resume a run, re-render a report.

``fedsim run FILE`` runs a scenario or a sweep, ``fedsim run --resume DIR``
continues an interrupted run, ``fedsim report DIR`` re-renders a report.

Exit codes: 0 success; 2 bad input (scenario file, ``--set``, output folder,
missing data or resources), with a one-line-per-problem message and no
traceback; 1 a run that failed while running (in a sweep: any run failed); 130 interrupted
(Ctrl-C): finished runs are kept, and running the same command again resumes a sweep.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from rich.console import Console

from fedsim.commands import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    describe_privacy,
    execute_run,
    print_error,
    run_sweep,
    scenario_or_sweep,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fedsim", description="fedsim: privacy-preserving federated learning simulator."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a scenario (or every run of a sweep) and write its report")
    run.add_argument(
        "scenario", type=Path, nargs="?", help="scenario TOML file (with a [sweep] table: a sweep)"
    )
    run.add_argument(
        "--resume",
        type=Path,
        metavar="DIR",
        help="continue the interrupted run in DIR from its last complete round (instead of a scenario)",
    )
    run.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="attach to an existing Ray cluster ('auto', 'host:port', 'ray://host:10001'); "
        "the same as --set resources.ray-address=ADDRESS",
    )
    run.add_argument(
        "--out", type=Path, help="output folder (default: reports/<scenario name>; --quick adds -quick)"
    )
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one key, e.g. --set federation.rounds=2 (repeatable)",
    )
    run.add_argument("--quick", action="store_true", help="sweeps only: apply the sweep's quick overrides")
    run.add_argument("--verbose", action="store_true", help="show Flower and Ray logs and tracebacks")
    report = commands.add_parser("report", help="re-render the report of a finished run or sweep")
    report.add_argument("run_dir", type=Path)
    return parser


def _run(args: argparse.Namespace, console: Console, errors: Console) -> int:
    import json

    from fedsim.scenario import ScenarioError

    if args.ray_address is not None:
        args.overrides.append(f"resources.ray-address={json.dumps(args.ray_address)}")
    if args.resume is not None:
        return _resume(args, console, errors)
    if args.scenario is None:
        print_error(errors, "fedsim run: give a scenario file, or --resume DIR")
        return EXIT_BAD_INPUT
    try:
        loaded, is_sweep = scenario_or_sweep(args.scenario, args.overrides, quick=args.quick)
    except ScenarioError as err:
        print_error(errors, err)
        return EXIT_BAD_INPUT
    source = str(args.scenario)
    if is_sweep:
        out_dir = args.out or Path("reports") / (loaded.name + ("-quick" if args.quick else ""))
        return run_sweep(loaded, out_dir, console=console, errors=errors, verbose=args.verbose, source=source)
    out_dir = args.out or Path("reports") / loaded.name
    return execute_run(loaded, out_dir, console=console, errors=errors, verbose=args.verbose, source=source)


def _resume(args: argparse.Namespace, console: Console, errors: Console) -> int:
    """``fedsim run --resume DIR``: continue an interrupted run with the scenario its checkpoint holds.

    Only ``--ray-address`` may change (where it runs, not what it computes).
    """
    from fedsim.results.store import RunDirError
    from fedsim.scenario import ScenarioError, apply_overrides, validate_scenario
    from fedsim.simulation.checkpoint import read_checkpoint

    moved = [o for o in args.overrides if not o.startswith("resources.ray-address=")]
    if args.scenario is not None or args.quick or moved or args.out is not None:
        print_error(
            errors,
            "--resume DIR continues the run in DIR with its own scenario; "
            "drop the scenario file, --set, --quick and --out (only --ray-address may change)",
        )
        return EXIT_BAD_INPUT
    source = str(args.resume / "checkpoint.pt")
    try:
        checkpoint = read_checkpoint(args.resume)  # its own scenario, whatever scenario.toml now says
        scenario = validate_scenario(apply_overrides(checkpoint.scenario, args.overrides), source=source)
    except (RunDirError, ScenarioError) as err:
        print_error(errors, err)
        return EXIT_BAD_INPUT
    return execute_run(
        scenario,
        args.resume,
        console=console,
        errors=errors,
        verbose=args.verbose,
        source=source,
        resume=checkpoint,
    )


def _report(args: argparse.Namespace, console: Console, errors: Console) -> int:
    from fedsim.report import render_report
    from fedsim.report.sweep import render_sweep_report
    from fedsim.results.store import RunDirError
    from fedsim.results.sweeps import SWEEP_FILE

    try:
        if (args.run_dir / SWEEP_FILE).is_file():
            path = render_sweep_report(args.run_dir)
        else:
            path = render_report(args.run_dir)
    except RunDirError as err:
        print_error(errors, err)
        return EXIT_BAD_INPUT
    console.print(f"report: {path}", highlight=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fedsim`` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    warnings.formatwarning = _one_line_warning
    console = Console(soft_wrap=True, highlight=False)
    errors = Console(stderr=True, soft_wrap=True, highlight=False)
    handler = {"run": _run, "report": _report}[args.command]
    try:
        return handler(args, console, errors)
    except KeyboardInterrupt:
        errors.print(
            "interrupted: finished runs are kept, and the interrupted one can continue from its last "
            "round: 'fedsim run --resume DIR' for a single run, the same command again for a sweep"
        )
        _exit_now(EXIT_INTERRUPTED)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """A warning as one line, ``warning: MESSAGE``: users read what happened, not fedsim's source line."""
    return f"warning: {message}\n"


def _exit_now(code: int) -> None:
    """Stop Ray (for at most 10 s) and exit at once.

    Flower's simulation leaves its ServerApp thread waiting after an interrupt,
    so an ordinary exit would wait for it forever.
    """
    import os
    import threading

    def shutdown() -> None:
        try:
            import ray

            ray.shutdown()
        except BaseException:  # noqa: BLE001, S110 - exiting anyway
            pass

    stopper = threading.Thread(target=shutdown, daemon=True)
    stopper.start()
    stopper.join(timeout=10)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "describe_privacy", "main"]

if __name__ == "__main__":
    sys.exit(main())
