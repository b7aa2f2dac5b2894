"""``fedsim run`` of one scenario: check the folder, run, save, report, and print what happened."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape

from fedsim.commands.output import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    describe_privacy,
    print_error,
    print_outcome,
)


def print_header(scenario, console: Console) -> None:
    """The run's first line: its name, data set, model, clients, split, rounds, strategy and protections."""
    f = scenario.federation
    console.print(
        f"[bold]{escape(scenario.name)}[/bold]: {scenario.data.dataset}, {scenario.model.name}, "
        f"{f.num_clients} clients ({scenario.data.partitioner}), {f.rounds} rounds, {f.strategy}, "
        f"{escape(describe_privacy(scenario.privacy))}",
        highlight=False,
    )
    if scenario.privacy.ignored_keys:
        console.print(
            f'  privacy.mode = "none": ignored {", ".join(scenario.privacy.ignored_keys)} '
            "(left out of the run's scenario.toml)",
            highlight=False,
        )


def progress_printer(console: Console, *, rounds: int):
    """A callback that prints one line per round record: accuracy, loss, ε, clients and seconds."""

    def on_round(record) -> None:
        eps = f"  ε_max {record.epsilon_max:.3f}" if record.epsilon_max is not None else ""
        eps += f"  user ε {record.user_epsilon:.3f}" if record.user_epsilon is not None else ""
        eps += f"  skipped {record.clients_skipped}" if record.clients_skipped else ""
        eps += f"  failed {record.clients_failed}" if record.clients_failed else ""
        label = "initial" if record.round == 0 else f"round {record.round}/{rounds}"
        console.print(
            f"  {label:>13}  accuracy {100 * record.accuracy:6.2f} %  loss {record.loss:.4f}{eps}"
            f"  clients {record.clients_trained}  {record.round_s:.1f} s",
            highlight=False,
        )

    return on_round


def execute_run(
    scenario,
    out_dir: Path,
    *,
    console: Console,
    errors: Console,
    verbose: bool,
    source: str,
    failure: list[str] | None = None,
    resume=None,
    tracking: dict | None = None,
    flower_run: tuple | None = None,
) -> int:
    """Run one validated scenario, save it to ``out_dir`` and render its report.

    Progress goes to ``out_dir`` every round, so a killed run continues with ``fedsim run --resume``.

    Args:
        scenario: a :class:`fedsim.scenario.schema.Scenario`.
        out_dir: the run directory (missing, empty or an earlier complete run;
            when resuming, the interrupted run's).
        console: progress and results (stdout).
        errors: error lines (stderr).
        verbose: show Flower's and Ray's logs and tracebacks.
        source: the scenario file's name, for error messages.
        failure: if given, the error message of a failed run is appended to it.
        resume: the interrupted run's :class:`~fedsim.simulation.checkpoint.Checkpoint`, or None.
        tracking: a sweep run's ``name``, ``experiment``, ``store_dir``, ``tags`` and ``parents``
            (:func:`fedsim.tracking.open_tracking`); None: tracked in its own folder.
        flower_run: inside ``flwr run``: the ServerApp's ``(grid, context)``, or None.

    Returns:
        The exit code: 0, 1 (failed: no result, progress kept for ``--resume``) or 2 (bad input).
    """

    def fail(err: object, code: int, prefix: str = "") -> int:  # prints, keeps the message, returns the code
        print_error(errors, err, prefix=prefix)
        if failure is not None:
            failure.append(prefix + str(err))
        return code

    from fedsim.results.store import RunDirError, check_writable_run_dir

    try:
        check_writable_run_dir(out_dir, progress=resume is not None)
    except (RunDirError, OSError) as err:
        return fail(err, EXIT_BAD_INPUT)
    print_header(scenario, console)
    return _run_save_report(
        scenario,
        out_dir,
        console=console,
        errors=errors,
        verbose=verbose,
        source=source,
        fail=fail,
        resume=resume,
        tracking=tracking,
        flower_run=flower_run,
    )


def _open_tracking(scenario, out_dir: Path, *, resume, tracking: dict | None):
    """The run's trackers (:func:`fedsim.tracking.open_tracking`), opened before training."""
    from dataclasses import replace

    from fedsim.tracking import open_tracking

    where = dict(tracking or {"name": scenario.name})
    default_experiment = where.pop("experiment", scenario.name)
    spec = scenario.tracking.spec()
    spec = replace(spec, experiment=spec.experiment or default_experiment)
    return open_tracking(
        spec,
        run_dir=out_dir,
        params=scenario.to_toml_dict(),
        fresh=resume is None,
        **where,
    )


def _run_save_report(
    scenario,
    out_dir: Path,
    *,
    console: Console,
    errors: Console,
    verbose: bool,
    source: str,
    fail,
    resume,
    tracking: dict | None,
    flower_run: tuple | None,
) -> int:
    """Run the scenario, save its folder, render its report, log it to its trackers; the exit code."""
    from fedsim.commands.run import run_scenario
    from fedsim.report import render_report
    from fedsim.results import save_run
    from fedsim.results.store import RunDirError
    from fedsim.results.summary_json import summary_to_json
    from fedsim.simulation.backend import ConfigurationError
    from fedsim.tracking import TrackingError

    try:
        trackers = _open_tracking(scenario, out_dir, resume=resume, tracking=tracking)
    except TrackingError as err:
        return fail(err, EXIT_BAD_INPUT, prefix=f"{source}: ")
    on_round = _tracked_progress(console, scenario, trackers)
    try:
        if resume is not None:
            console.print(f"  resuming after round {resume.round}", highlight=False)
        result = run_scenario(
            scenario,
            verbose=verbose,
            on_round=on_round,
            run_dir=out_dir,
            resume=resume,
            flower_run=flower_run,
        )
    except ConfigurationError as err:
        trackers.finish(out_dir, {}, status="FAILED")
        return fail(err, EXIT_BAD_INPUT, prefix=f"{source}: ")
    except Exception as err:  # noqa: BLE001 - any failure while running: no traceback unless --verbose
        if verbose:
            errors.print_exception()
        code = fail(err, EXIT_FAILED, prefix="the run failed: ")
        errors.print(f"no result was written; {_after_failure(out_dir, scenario.federation.rounds)}")
        trackers.finish(out_dir, {}, status="FAILED")
        return code
    try:
        save_run(result, out_dir)
        report = render_report(out_dir)
    except (OSError, RunDirError) as err:
        trackers.finish(out_dir, {}, status="FAILED")
        return fail(err, EXIT_FAILED, prefix="could not write the results: ")
    trackers.finish(out_dir, summary_to_json(result.summary))
    print_outcome(
        result.summary, report, console, split="validation" if scenario.data.validation_fraction else "test"
    )
    return EXIT_OK


def _tracked_progress(console: Console, scenario, trackers):
    """Say where the run is tracked; then a round callback that prints each record and tracks it."""
    for line in trackers.where():
        console.print(f"  tracking: {escape(line)}", highlight=False)
    printer = progress_printer(console, rounds=scenario.federation.rounds)

    def on_round(record) -> None:
        printer(record)
        trackers.log_round(record)

    return on_round


def _after_failure(out_dir: Path, rounds: int) -> str:
    """What a failed run left in ``out_dir``, and what to do next (one line)."""
    from fedsim.results.store import CHECKPOINT_FILE, RunDirError, is_progress_dir
    from fedsim.simulation.checkpoint import read_checkpoint

    logs = "rerun with --verbose for Flower's and Ray's logs"
    try:
        done = read_checkpoint(out_dir).round if is_progress_dir(out_dir) else -1
    except RunDirError:
        done = -1
    if 0 <= done < rounds:
        return f"'fedsim run --resume {out_dir}' continues it after round {done}; {logs}"
    if done >= rounds:  # every round ran: resuming would fail the same way, so a new run may replace it
        (out_dir / CHECKPOINT_FILE).unlink(missing_ok=True)
        return f"its rounds are in {out_dir / 'rounds.csv'}; {logs}"
    return logs
