"""A sweep's tuning step: every arm's trials, the configuration each arm chooses, ``tune.json``.

See :mod:`fedsim.scenario.tuning` for the ``tune`` table. Trials go to
``<sweep>/tune/<arm id>/<trial id>/`` as ordinary run folders (their reports say
that they were evaluated on the validation split); a trial already complete for
the same scenario is not run again, so an interrupted sweep resumes here too.

``tune.json`` holds ``grid``, ``by``, ``validation_fraction`` and, per arm,
``arm_id``, ``labels``, ``run_ids``, ``trials`` (``trial_id``, ``config``,
``dir``, ``status``, ``validation_accuracy``), ``chosen`` (a trial id, or None)
and ``config`` (what its runs train with; None if no trial finished).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console

from fedsim.commands.execute import execute_run
from fedsim.commands.output import EXIT_OK
from fedsim.report.tuning import TUNE_FILE

TUNE_DIR = "tune"


def best_trial(accuracies: dict[str, float | None]) -> str | None:
    """The trial with the highest validation accuracy (the first in grid order on a tie), or None.

    Args:
        accuracies: trial id → final validation accuracy in ``[0, 1]``, in grid
            order; None (or NaN) for a trial that failed.

    Example:
        >>> best_trial({"lr-0.5": 0.71, "lr-1": 0.80, "lr-2": 0.80, "lr-4": None})
        'lr-1'
    """
    finished = {t: a for t, a in accuracies.items() if a is not None and not math.isnan(a)}
    return max(finished, key=finished.__getitem__, default=None)


def _trial(trial, trial_dir: Path, *, console: Console, errors: Console, **opts) -> dict[str, Any]:
    """Run one trial unless its folder already holds it complete; its entry for ``tune.json``."""
    from fedsim.commands.sweep import _prepare_run_dir, _same_scenario
    from fedsim.results.run_dir import complete_summary

    if _same_scenario(trial_dir, trial.scenario):
        console.print(f"  {trial.trial_id}: already complete, skipped", highlight=False)
        status = "complete"
    else:
        console.print(f"  {trial.trial_id}", highlight=False)
        resume = _prepare_run_dir(trial_dir, trial.scenario, console)
        code = execute_run(trial.scenario, trial_dir, console=console, errors=errors, resume=resume, **opts)
        status = "complete" if code == EXIT_OK else "failed"
    summary = complete_summary(trial_dir) if status == "complete" else None
    return {
        "trial_id": trial.trial_id,
        "config": trial.config,
        "dir": str(trial_dir.relative_to(trial_dir.parents[2])),
        "status": status,
        "validation_accuracy": summary.get("final_accuracy") if summary else None,
    }


def run_tuning(plan, out_dir: Path, *, console: Console, errors: Console, **opts) -> dict[str, Any]:
    """Run every arm's trials and choose each arm's configuration; write ``tune.json``.

    Args:
        plan: the sweep's :class:`fedsim.scenario.tuning.TunePlan`.
        out_dir: the sweep's folder (trials go to ``out_dir/tune/<arm id>/<trial id>``).
        console: progress (stdout).
        errors: error lines (stderr).
        **opts: ``verbose`` and ``source``, as for :func:`fedsim.commands.execute.execute_run`.

    Returns:
        The contents of ``tune.json``: per arm, its trials' validation accuracy,
        the chosen trial and its ``config`` (None where every trial failed). An arm
        with one distinct configuration runs no trial: ``config`` is that one.
    """
    record = {
        "grid": {k: list(v) for k, v in plan.grid.items()},
        "by": list(plan.by),
        "validation_fraction": plan.validation_fraction,
        "arms": [],
    }
    for arm in plan.arms:
        if len(arm.trials) == 1:  # nothing to choose (no grid key applies to this arm): no trial runs
            record["arms"].append(_arm_record(arm, [], None, arm.trials[0].config))
        else:
            console.print(f"tuning {arm.arm_id}: {len(arm.trials)} trials", highlight=False)
            trials = [
                _trial(
                    t, out_dir / TUNE_DIR / arm.arm_id / t.trial_id, console=console, errors=errors, **opts
                )
                for t in arm.trials
            ]
            chosen = best_trial({t["trial_id"]: t["validation_accuracy"] for t in trials})
            config = next((t["config"] for t in trials if t["trial_id"] == chosen), None)
            record["arms"].append(_arm_record(arm, trials, chosen, config))
            if config is not None:
                console.print(f"  chosen: {_config_text(config)}", highlight=False)
        (out_dir / TUNE_FILE).write_text(
            json.dumps(record, indent=2) + "\n", encoding="utf-8"
        )  # after each arm
    return record


def _arm_record(arm, trials: list[dict], chosen: str | None, config: dict | None) -> dict[str, Any]:
    """An arm's entry in ``tune.json``."""
    return {
        "arm_id": arm.arm_id,
        "labels": arm.labels,
        "run_ids": list(arm.run_ids),
        "trials": trials,
        "chosen": chosen,
        "config": config,
    }


def _config_text(config: dict[str, Any]) -> str:
    """``federation.learning-rate = 2, privacy.max-grad-norm = 0.1``; ``(as given)`` for an empty one."""
    return ", ".join(f"{k} = {v!r}" for k, v in config.items()) or "(as given)"


def tune_sweep(sweep, manifest: dict[str, Any], out_dir: Path, *, console: Console, errors: Console, **opts):
    """Step 2 of a tuned sweep (:func:`fedsim.commands.sweep.run_sweep`): tune, then retarget its runs.

    Writes ``tune.json`` (:func:`run_tuning`) and ``sweep.json``: the runs of an arm
    with no finished trial are marked failed in ``manifest`` and left out of the
    returned sweep (so not run).

    Args:
        sweep: the :class:`fedsim.scenario.sweeps.Sweep`, with its ``tune`` plan.
        manifest: the sweep's manifest (``sweep.json``), updated here.
        out_dir: the sweep's folder.
        console: progress (stdout).
        errors: error lines (stderr).
        **opts: ``verbose`` and ``source``, as for :func:`fedsim.commands.execute.execute_run`.

    Returns:
        The sweep with the runs to train, each with its arm's chosen configuration.
    """
    from fedsim.commands.output import print_error
    from fedsim.results.sweeps import write_sweep_manifest
    from fedsim.scenario.tuning import apply_config

    record = run_tuning(sweep.tune, out_dir, console=console, errors=errors, **opts)
    chosen: dict[str, dict] = {}
    for arm in record["arms"]:
        config = arm["config"]
        if config is None:
            print_error(
                errors,
                f"tuning {arm['arm_id']}: no trial finished with a finite validation accuracy, "
                "so its runs are not trained",
            )
        for run_id in arm["run_ids"]:
            if config is not None:
                chosen[run_id] = config
    for entry in manifest["runs"]:
        if entry["run_id"] not in chosen:
            entry["status"], entry["error"] = "failed", "tuning: no trial of its arm finished"
    write_sweep_manifest(out_dir, manifest)
    source = opts.get("source", "sweep")
    runs = tuple(
        replace(
            r, scenario=apply_config(r.scenario, chosen[r.run_id], source=f"{source} (sweep run {r.run_id})")
        )
        for r in sweep.runs
        if r.run_id in chosen
    )
    return replace(sweep, runs=runs)
