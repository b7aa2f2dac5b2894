"""Running scenarios and sweeps for the command line: run, save, report, print progress.

Exit codes (as :mod:`fedsim.cli` documents them): 0 success; 2 bad input; 1 a
run that failed while running.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import tomli_w
from rich.console import Console
from rich.markup import escape

from fedsim.results.records import RunSummary

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


def print_error(errors: Console, err: object, prefix: str = "") -> None:
    """Print each line of an error message as its own ``error:`` line (on stderr)."""
    for line in str(err).splitlines() or [type(err).__name__]:
        errors.print(f"[red]error:[/red] {escape(prefix + line)}")


def describe_privacy(p) -> str:
    """One line naming a scenario's privacy protections (the ``[privacy]`` section).

    Example:
        >>> from fedsim.scenario.privacy_section import PrivacySection
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
) -> int:
    """Run one validated scenario, save it to ``out_dir`` and render its report.

    The run's progress is written to ``out_dir`` after every round (an earlier
    complete run there is removed at the first one), so a killed run can be
    continued with ``fedsim run --resume out_dir``.

    Args:
        scenario: a :class:`fedsim.scenario.schema.Scenario`.
        out_dir: the run directory (missing, empty or an earlier complete run;
            when resuming, the interrupted run's).
        console: progress and results (stdout).
        errors: error lines (stderr).
        verbose: show Flower's and Ray's logs and tracebacks.
        source: the scenario file's name, for error messages.
        failure: if given, the error message of a failed run is appended to it.
        resume: the :class:`fedsim.simulation.checkpoint.Checkpoint` of the
            interrupted run in ``out_dir`` to continue, or None to start afresh.

    Returns:
        The exit code: 0, 1 (the run failed; no result written, its progress
        kept for ``--resume``) or 2 (bad input).
    """

    def fail(err: object, code: int, prefix: str = "") -> int:
        print_error(errors, err, prefix=prefix)
        if failure is not None:
            failure.append(prefix + str(err))
        return code

    from fedsim.report import render_report
    from fedsim.results import save_run
    from fedsim.results.store import RunDirError, check_writable_run_dir
    from fedsim.commands.run import run_scenario
    from fedsim.simulation.backend import ConfigurationError

    try:
        check_writable_run_dir(out_dir, progress=resume is not None)
    except (RunDirError, OSError) as err:
        return fail(err, EXIT_BAD_INPUT)
    f = scenario.federation
    console.print(
        f"[bold]{escape(scenario.name)}[/bold]: {scenario.data.dataset}, {scenario.model.name}, "
        f"{f.num_clients} clients ({scenario.data.partitioner}), {f.rounds} rounds, "
        f"{escape(describe_privacy(scenario.privacy))}",
        highlight=False,
    )

    def on_round(record) -> None:
        eps = f"  ε_max {record.epsilon_max:.3f}" if record.epsilon_max is not None else ""
        eps += f"  user ε {record.user_epsilon:.3f}" if record.user_epsilon is not None else ""
        eps += f"  skipped {record.clients_skipped}" if record.clients_skipped else ""
        eps += f"  failed {record.clients_failed}" if record.clients_failed else ""
        label = "initial" if record.round == 0 else f"round {record.round}/{f.rounds}"
        console.print(
            f"  {label:>13}  accuracy {100 * record.accuracy:6.2f} %  loss {record.loss:.4f}{eps}"
            f"  clients {record.clients_trained}  {record.round_s:.1f} s",
            highlight=False,
        )

    try:
        if resume is not None:
            console.print(f"  resuming after round {resume.round}", highlight=False)
        result = run_scenario(scenario, verbose=verbose, on_round=on_round, run_dir=out_dir, resume=resume)
    except ConfigurationError as err:
        return fail(err, EXIT_BAD_INPUT, prefix=f"{source}: ")
    except Exception as err:  # noqa: BLE001 - any failure while running: no traceback unless --verbose
        if verbose:
            errors.print_exception()
        code = fail(err, EXIT_FAILED, prefix="the run failed: ")
        errors.print(f"no result was written; {_after_failure(out_dir, scenario.federation.rounds)}")
        return code
    try:
        save_run(result, out_dir)
        report = render_report(out_dir)
    except (OSError, RunDirError) as err:
        return fail(err, EXIT_FAILED, prefix="could not write the results: ")
    _print_outcome(result.summary, report, console)
    return EXIT_OK


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


def _print_outcome(s: RunSummary, report: Path, console: Console) -> None:
    """The closing lines of a run: stop reason, warnings, accuracy, ε, audit and the report's path."""
    p = s.privacy
    eps = f", ε {p.epsilon_max:.3f}" if p.epsilon_max is not None else ""
    eps += f", user-level ε {p.user_epsilon:.3f}" if p.user_epsilon is not None else ""
    eps += f" (δ {p.delta:g})" if eps else ""
    if s.stop_reason:
        console.print(f"stopped early: {s.stop_reason}", highlight=False)
    if p.user_budget_exceeded:
        console.print(
            f"warning: user-level ε {p.user_epsilon:.3f} is above privacy.user-target-epsilon = "
            f"{p.user_target_epsilon:g} (clients failed during a round; see the report's Privacy section)",
            highlight=False,
        )
    if s.diverged:
        console.print("warning: training diverged (the test loss is not finite); lower the learning rate")
    audit = ""
    for attack in s.audit.attacks if s.audit else ():
        audit += (
            f"\nmembership inference ({attack.attack} attack): AUC {attack.auc:.3f}, "
            f"empirical ε lower bound {attack.epsilon_lower_bound:.2f}"
        )
    console.print(
        f"done in {s.wall_s:.1f} s: test accuracy {100 * s.final_accuracy:.2f} % "
        f"(baseline {100 * s.baseline_accuracy:.2f} %){eps}{audit}\n"
        f"report: {report}",
        highlight=False,
    )


def _what_is_computed(raw: dict) -> dict:
    """A resolved scenario as ``scenario.toml`` stores it, without ``[resources]``.

    Where a run ran (its Ray cluster, CPUs per client) does not change what it computes.
    """
    resolved = tomllib.loads(tomli_w.dumps(raw))  # the same round trip as the saved file
    resolved.pop("resources", None)
    return resolved


def _same_scenario(run_dir: Path, scenario) -> bool:
    """True if ``run_dir`` holds a complete run of ``scenario`` (resolved; resources aside)."""
    from fedsim.results.store import complete_summary

    if complete_summary(run_dir) is None:
        return False
    try:
        saved = tomllib.loads((run_dir / "scenario.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return False
    return _what_is_computed(saved) == _what_is_computed(scenario.to_toml_dict())


def _checkpoint_of(run_dir: Path, scenario):
    """The checkpoint of an interrupted run of ``scenario`` in ``run_dir`` (resources aside), or None."""
    from fedsim.results.store import RunDirError, is_progress_dir
    from fedsim.simulation.checkpoint import read_checkpoint

    if not is_progress_dir(run_dir):
        return None
    try:
        checkpoint = read_checkpoint(run_dir)
    except RunDirError:
        return None
    same = _what_is_computed(checkpoint.scenario) == _what_is_computed(scenario.to_toml_dict())
    return checkpoint if same else None


def run_sweep(sweep, out_dir: Path, *, console: Console, errors: Console, verbose: bool, source: str) -> int:
    """Run every run of a sweep that is not already complete, then write the sweep report.

    Pipeline:

    1. check the output folder (missing, empty or an earlier sweep), delete an
       earlier sweep report and write ``sweep.json`` with every run pending;
    2. for each grid point: skip it if ``runs/<run id>`` already holds a complete
       run of the same resolved scenario (so an interrupted sweep resumes),
       else run, save and report it: an interrupted run of the same scenario
       continues from its checkpoint, any other incomplete folder there (which
       only the sweep writes) is replaced; ``sweep.json`` is rewritten after each run;
    3. render the sweep report (``report.md``, ``report.html``, plots, ``runs.csv``).

    Args:
        sweep: a :class:`fedsim.scenario.sweeps.Sweep`.
        out_dir: the sweep's folder (runs go to ``out_dir/runs/<run id>``).
        console: progress (stdout).
        errors: error lines (stderr).
        verbose: show Flower's and Ray's logs.
        source: the sweep file's name, for error messages.

    Returns:
        0 if every run is complete; 1 if some run failed (the report lists it);
        2 if the output folder cannot be used.
    """
    from fedsim.report.sweep import render_sweep_report
    from fedsim.results.store import RunDirError, complete_summary
    from fedsim.results.sweeps import check_sweep_dir, remove_sweep_report, write_sweep_manifest

    manifest = {
        "name": sweep.name,
        "quick": sweep.quick,
        "axes": [
            {
                "name": a.name,
                "labels": list(a.labels),
                "is_key": a.is_key,
                "touches_privacy": a.touches_privacy,
            }
            for a in sweep.axes
        ],
        "reference": sweep.reference,
        "runs": [
            {"run_id": r.run_id, "labels": r.labels, "dir": f"runs/{r.run_id}", "status": "pending"}
            for r in sweep.runs
        ],
        "status": "running",
    }
    try:  # 1
        check_sweep_dir(out_dir)
        (out_dir / "runs").mkdir(parents=True, exist_ok=True)
        remove_sweep_report(out_dir)
        write_sweep_manifest(out_dir, manifest)
    except (RunDirError, OSError) as err:
        print_error(errors, err)
        return EXIT_BAD_INPUT
    console.print(f"[bold]sweep {escape(sweep.name)}[/bold]: {len(sweep.runs)} runs → {out_dir}")
    worst = EXIT_OK
    for i, (run, entry) in enumerate(zip(sweep.runs, manifest["runs"], strict=True), start=1):  # 2
        run_dir = out_dir / entry["dir"]
        if _same_scenario(run_dir, run.scenario):
            console.print(f"[{i}/{len(sweep.runs)}] {run.run_id}: already complete, skipped", highlight=False)
            entry["status"] = "complete"
            continue
        console.print(f"[{i}/{len(sweep.runs)}] {run.run_id}", highlight=False)
        resume = _checkpoint_of(run_dir, run.scenario)
        if resume is None and run_dir.is_dir() and complete_summary(run_dir) is None:  # interrupted
            console.print(f"  replacing the incomplete run folder {run_dir}", highlight=False)
            shutil.rmtree(run_dir)
        failure: list[str] = []
        try:
            code = execute_run(
                run.scenario,
                run_dir,
                console=console,
                errors=errors,
                verbose=verbose,
                source=source,
                failure=failure,
                resume=resume,
            )
        except KeyboardInterrupt:
            entry["status"] = "interrupted"
            manifest["status"] = "interrupted"
            write_sweep_manifest(out_dir, manifest)
            raise
        entry["status"] = "complete" if code == EXIT_OK else "failed"
        entry["error"] = "; ".join(failure) or None
        worst = max(worst, EXIT_FAILED if code != EXIT_OK else EXIT_OK)
        write_sweep_manifest(out_dir, manifest)
    manifest["status"] = "complete" if worst == EXIT_OK else "incomplete"
    write_sweep_manifest(out_dir, manifest)
    report = render_sweep_report(out_dir)  # 3
    failed = [e["run_id"] for e in manifest["runs"] if e["status"] != "complete"]
    if failed:
        print_error(errors, f"{len(failed)} of {len(sweep.runs)} runs failed: {', '.join(failed)}")
    console.print(f"sweep report: {report}", highlight=False)
    return worst


def scenario_or_sweep(path: Path, overrides: list[str], *, quick: bool) -> tuple[object, bool]:
    """Load a scenario file: ``(Scenario, False)``, or ``(Sweep, True)`` if it has a ``[sweep]`` table.

    Raises:
        fedsim.scenario.schema.ScenarioError: for any invalid file, key or
            expanded run; or ``--quick`` on a file without a sweep.
    """
    from fedsim.scenario.sweeps import expand_sweep, is_sweep
    from fedsim.scenario import ScenarioError, read_scenario_file, source_name, validate_scenario

    raw = read_scenario_file(path, overrides)
    source = source_name(path, overrides)
    if is_sweep(raw):
        return expand_sweep(raw, source=source, quick=quick, base_dir=Path(path).parent), True
    if quick:
        raise ScenarioError(f"{source}: --quick applies to sweep files (with a [sweep] table) only")
    return validate_scenario(raw, source=source), False


__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "describe_privacy",
    "execute_run",
    "print_error",
    "run_sweep",
    "scenario_or_sweep",
]
