"""``fedsim run`` of a sweep: every run not already complete, then the sweep report; and loading either."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import tomli_w
from rich.console import Console
from rich.markup import escape

from fedsim.commands.execute import execute_run
from fedsim.commands.output import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, print_error
from fedsim.results.run_dir import TRACKING_DIR


def _what_is_computed(raw: dict) -> dict:
    """A resolved scenario as ``scenario.toml`` stores it, without ``[resources]``.

    Where a run ran (its Ray cluster, CPUs per client) does not change what it computes.
    A saved scenario is resolved again by today's schema first, so that a file written
    by an earlier fedsim (which also wrote, say, the options of strategies it did not
    run) still matches the same scenario.
    """
    from fedsim.scenario import ScenarioError, validate_scenario

    try:
        raw = validate_scenario(raw, source="scenario.toml").to_toml_dict()
    except ScenarioError:
        pass  # compared as saved: it differs from any valid scenario
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


def _manifest(sweep) -> dict:
    """``sweep.json`` before the first run: the grid's axes, reference and every run pending."""
    return {
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


def _prepare_run_dir(run_dir: Path, scenario, console: Console):
    """The checkpoint to resume ``run_dir`` from, or None after removing any other incomplete run there."""
    from fedsim.results.store import complete_summary

    resume = _checkpoint_of(run_dir, scenario)
    if resume is None and run_dir.is_dir() and complete_summary(run_dir) is None:  # interrupted
        console.print(f"  replacing the incomplete run folder {run_dir}", highlight=False)
        shutil.rmtree(run_dir)
    return resume


def _run_entry(
    run,
    *,
    run_dir: Path,
    entry: dict,
    manifest: dict,
    out_dir: Path,
    console: Console,
    errors: Console,
    **opts,
) -> int:
    """Run one grid point (resuming its checkpoint if any) and record its status in ``sweep.json``.

    Args:
        run: the :class:`fedsim.scenario.sweeps.SweepRun`.
        run_dir: its folder.
        entry: its entry in ``manifest``, updated here.
        manifest: the sweep's manifest, rewritten after the run (and on Ctrl-C, as interrupted).
        out_dir: the sweep's folder.
        console: progress (stdout).
        errors: error lines (stderr).
        **opts: ``verbose``, ``source`` and ``tracking``, as for :func:`fedsim.commands.execute.execute_run`.

    Returns:
        The run's exit code.
    """
    from fedsim.results.sweeps import write_sweep_manifest

    resume = _prepare_run_dir(run_dir, run.scenario, console)
    failure: list[str] = []
    try:
        code = execute_run(
            run.scenario, run_dir, console=console, errors=errors, failure=failure, resume=resume, **opts
        )
    except KeyboardInterrupt:
        entry["status"] = manifest["status"] = "interrupted"
        write_sweep_manifest(out_dir, manifest)
        raise
    entry["status"] = "complete" if code == EXIT_OK else "failed"
    entry["error"] = "; ".join(failure) or None
    write_sweep_manifest(out_dir, manifest)
    return code


def _run_all(
    sweep, manifest: dict, out_dir: Path, *, parent, console: Console, errors: Console, **opts
) -> int:
    """Tune the arms if the sweep says so, then run every grid point not already complete.

    Step 2 of :func:`run_sweep`. Returns the worst exit code.
    """
    if sweep.tune is not None:
        from fedsim.commands.tune import tune_sweep

        sweep = tune_sweep(sweep, manifest, out_dir, console=console, errors=errors, **opts)
    worst = EXIT_OK if all(e["status"] != "failed" for e in manifest["runs"]) else EXIT_FAILED
    entries = {e["run_id"]: e for e in manifest["runs"]}
    for i, run in enumerate(sweep.runs, start=1):
        entry = entries[run.run_id]
        run_dir = out_dir / entry["dir"]
        if _same_scenario(run_dir, run.scenario):
            console.print(f"[{i}/{len(sweep.runs)}] {run.run_id}: already complete, skipped", highlight=False)
            entry["status"] = "complete"
            continue
        console.print(f"[{i}/{len(sweep.runs)}] {run.run_id}", highlight=False)
        where = {"run_dir": run_dir, "entry": entry, "manifest": manifest, "out_dir": out_dir}
        tracked = _run_tracking(sweep.name, run.run_id, entry, out_dir, parent)
        code = _run_entry(run, **where, console=console, errors=errors, tracking=tracked, **opts)
        worst = max(worst, EXIT_FAILED if code != EXIT_OK else EXIT_OK)
    return worst


def _run_tracking(sweep_name: str, run_id: str, entry: dict, out_dir: Path, parent) -> dict:
    """Where a sweep's run is tracked: the sweep's store and experiment, its axis labels, the parent run."""
    mlflow_parent = parent.run_id("mlflow")
    return {
        "name": run_id,
        "experiment": sweep_name,
        "store_dir": out_dir / TRACKING_DIR,
        "tags": {f"axis.{k}": v for k, v in entry["labels"].items()},
        "parents": {"mlflow": mlflow_parent} if mlflow_parent else None,
    }


def _open_sweep_tracking(sweep, out_dir: Path):
    """The sweep's own MLflow run, the parent of its runs' (TensorBoard has no parent runs).

    Its store is the sweep folder's ``tracking/``, unless ``tracking.mlflow-uri`` names another.

    Raises:
        TrackingError: if MLflow cannot be used (before any run trains).
    """
    from dataclasses import replace

    from fedsim.tracking import open_tracking

    spec = sweep.runs[0].scenario.tracking.spec()
    axes = {axis.name: list(axis.labels) for axis in sweep.axes}
    return open_tracking(
        replace(
            spec,
            backends=tuple(b for b in spec.backends if b == "mlflow"),
            experiment=spec.experiment or sweep.name,
        ),
        name=sweep.name,
        run_dir=out_dir,
        params={"sweep": {"axes": axes, "runs": len(sweep.runs), "quick": sweep.quick}},
        store_dir=out_dir / TRACKING_DIR,
        tags={"fedsim.sweep": sweep.name},
    )


def run_sweep(sweep, out_dir: Path, *, console: Console, errors: Console, verbose: bool, source: str) -> int:
    """Run every run of a sweep that is not already complete, then write the sweep report.

    Pipeline:

    1. check the output folder (missing, empty or an earlier sweep), delete an
       earlier sweep report and write ``sweep.json`` with every run pending;
    2. for each grid point: skip it if ``runs/<run id>`` already holds a complete
       run of the same resolved scenario (so an interrupted sweep resumes),
       else run it (an interrupted run of the same scenario from its checkpoint; any
       other incomplete folder there is replaced) and rewrite ``sweep.json``; a
       ``tune`` table's trials come first (:func:`fedsim.commands.tune.tune_sweep`);
    3. render the sweep report (``report.md``, ``report.html``, plots, ``runs.csv``).

    Args:
        sweep: a :class:`fedsim.scenario.sweeps.Sweep`.
        out_dir: the sweep's folder (runs go to ``out_dir/runs/<run id>``).
        console: progress (stdout).
        errors: error lines (stderr).
        verbose: show Flower's and Ray's logs.
        source: the sweep file's name, for error messages.

    With ``[tracking] mlflow = true`` the sweep is an MLflow run and its runs are
    its children, tagged with their axis labels (``axis.<name>``).

    Returns:
        0 if every run is complete; 1 if some run failed (the report lists it);
        2 if the output folder or a tracking backend cannot be used.
    """
    from fedsim.report.sweep import render_sweep_report
    from fedsim.results.store import RunDirError
    from fedsim.results.sweeps import check_sweep_dir, remove_sweep_report, write_sweep_manifest
    from fedsim.tracking import TrackingError

    manifest = _manifest(sweep)
    try:  # 1
        check_sweep_dir(out_dir)
        (out_dir / "runs").mkdir(parents=True, exist_ok=True)
        remove_sweep_report(out_dir)
        write_sweep_manifest(out_dir, manifest)
        parent = _open_sweep_tracking(sweep, out_dir)
    except (RunDirError, OSError, TrackingError) as err:
        print_error(errors, f"{source}: {err}" if isinstance(err, TrackingError) else err)
        return EXIT_BAD_INPUT
    console.print(f"[bold]sweep {escape(sweep.name)}[/bold]: {len(sweep.runs)} runs → {out_dir}")
    opts = {"verbose": verbose, "source": source}
    worst = _run_all(sweep, manifest, out_dir, parent=parent, console=console, errors=errors, **opts)  # 2
    manifest["status"] = "complete" if worst == EXIT_OK else "incomplete"
    write_sweep_manifest(out_dir, manifest)
    report = render_sweep_report(out_dir)  # 3
    failed = [e["run_id"] for e in manifest["runs"] if e["status"] != "complete"]
    parent.finish(
        out_dir,
        {"runs": len(sweep.runs), "runs_failed": len(failed)},
        status="FAILED" if failed else "FINISHED",
    )
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
    from fedsim.scenario import ScenarioError, read_scenario_file, source_name, validate_scenario
    from fedsim.scenario.sweeps import expand_sweep, is_sweep

    raw = read_scenario_file(path, overrides)
    source = source_name(path, overrides)
    if is_sweep(raw):
        return expand_sweep(raw, source=source, quick=quick, base_dir=Path(path).parent), True
    if quick:
        raise ScenarioError(f"{source}: --quick applies to sweep files (with a [sweep] table) only")
    return validate_scenario(raw, source=source), False
