"""Hyper-parameter tuning in sweeps: the ``tune`` table of ``[sweep]``, its arms and their trials.

A sweep compares protections; a protection compared at settings tuned for
another is a finding about the settings, not about the protection (DP-SGD wants
a larger learning rate and a smaller clipping norm than non-private SGD). So a
sweep may name a small grid that each *arm* tunes on its own::

    [sweep.tune]
    "federation.learning-rate" = [0.5, 1.0, 2.0, 4.0]
    "privacy.max-grad-norm" = [0.1, 1.0]
    validation-fraction = 0.1          # default 0.1
    by = ["model", "protection"]       # default: every axis but seed

* An *arm* is one combination of labels of the ``by`` axes; the runs that differ
  only on the other axes (the seeds) share its chosen configuration.
* A *trial* is the arm's first run with one grid point applied, trained on the
  training data less a validation split (``data.validation-fraction``) and
  evaluated on that split: the test set is never read while tuning. The audit
  is off in trials.
* A key the arm does not use (``privacy.max-grad-norm`` in an arm without
  DP-SGD) is not tuned there: grid points that resolve to the same scenario are one trial.
* The arm's configuration is the trial with the highest final validation
  accuracy (the first in grid order on a tie); its runs then train with it.

The trials train on the same private data as the reported runs. Their privacy
cost is **not** in the runs' ε (Papernot and Steinke 2022, "Hyperparameter
Tuning with Renyi Differential Privacy", https://arxiv.org/abs/2110.03620); the
sweep report says so.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from typing import Any

from fedsim.scenario.errors import ScenarioError
from fedsim.scenario.schema import Scenario
from fedsim.scenario.sweep_axes import _flatten, _label, _run_id, _set
from fedsim.scenario.sweep_types import Axis, SweepRun
from fedsim.scenario.tune_table import TUNE_KEY, parse_tune_table

__all__ = ["TUNE_KEY", "Trial", "TuneArm", "TunePlan", "apply_config", "parse_tune_table", "plan_tuning"]


@dataclass(frozen=True)
class Trial:
    """One grid point of one arm.

    Attributes:
        trial_id: a folder-safe id from the configuration, e.g. ``learning-rate-2_max-grad-norm-0.1``.
        config: dotted scenario key → value; keys the arm's scenario does not use are left out.
        scenario: the trial's validated scenario (validation split, audit off).
    """

    trial_id: str
    config: dict[str, Any]
    scenario: Scenario


@dataclass(frozen=True)
class TuneArm:
    """The runs that share one tuned configuration, and the trials that choose it.

    Attributes:
        arm_id: a folder-safe id from the ``by`` labels (``"all"`` when ``by`` is empty).
        labels: ``by`` axis name → label.
        trials: the distinct trials, in grid order.
        run_ids: the sweep's runs that train with the chosen configuration.
    """

    arm_id: str
    labels: dict[str, str]
    trials: tuple[Trial, ...]
    run_ids: tuple[str, ...]


@dataclass(frozen=True)
class TunePlan:
    """A sweep's tuning: the grid, how arms are formed and every arm's trials.

    Attributes:
        grid: dotted scenario key → its values, in file order (the first varies slowest).
        by: the axis names that define an arm.
        validation_fraction: share of the training data held out in trials, in ``(0, 0.5]``.
        arms: every arm, in the order of the sweep's runs.
    """

    grid: dict[str, tuple[Any, ...]]
    by: tuple[str, ...]
    validation_fraction: float
    arms: tuple[TuneArm, ...]

    @property
    def trials(self) -> int:
        """Trials in all (distinct grid points, summed over arms)."""
        return sum(len(arm.trials) for arm in self.arms)


def apply_config(
    scenario: Scenario, config: dict[str, Any], *, source: str, extra: dict | None = None
) -> Scenario:
    """``scenario`` with the dotted keys of ``config`` (and ``extra``) set, validated again.

    Args:
        scenario: a validated scenario; its keys as the file gave them are the base.
        config: dotted scenario key → value (a table value replaces the whole table).
        source: the file name and run, for error messages.
        extra: more dotted keys to set after ``config``.

    Returns:
        The new validated scenario.

    Raises:
        ScenarioError: naming ``source`` and the key, if the result is invalid.
    """
    from fedsim.scenario.reading import validate_scenario

    raw = copy.deepcopy(scenario.model_dump(by_alias=True, exclude_unset=True))  # as the file gave it
    for key, value in {**config, **(extra or {})}.items():
        _set(raw, key, value)
    return validate_scenario(raw, source=source)


def _trial_overrides(sweep_name: str, fraction: float, arm_id: str, trial_id: str) -> dict[str, Any]:
    """What makes a run a trial: the validation split, no audit or tracking, its own name."""
    return {
        "data.validation-fraction": fraction,
        "audit": {"enabled": False},
        "tracking": {},
        "name": f"{sweep_name}.tune.{arm_id}.{trial_id}"[:100],
    }


def _unused(scenario: Scenario) -> set[str]:
    """Keys the scenario's privacy mode or strategy does not use (``max-grad-norm`` under mode "user").

    Setting one would be an error, so an arm does not tune them. Keys whose
    default is None (``clipped-count-stddev``, ``eta``) count too.
    """
    raw = scenario.model_dump(by_alias=True)
    used = {
        **raw,
        "privacy": scenario.privacy.applicable(raw["privacy"]),
        "federation": scenario.federation.applicable(raw["federation"]),
    }
    return set(_flatten(raw)) - set(_flatten(used))


def _arm_trials(
    first: SweepRun, grid: dict[str, tuple], fraction: float, arm_id: str, *, source: str, sweep_name: str
) -> tuple[Trial, ...]:
    """The distinct trials of the arm whose first run is ``first``, in grid order."""
    trials, seen = [], set()
    unused = _unused(first.scenario)
    for values in itertools.product(*grid.values()):
        config = {k: v for k, v in zip(grid, values, strict=True) if k not in unused}
        where = f"{source} (tuning {arm_id}: {', '.join(f'{k} = {v!r}' for k, v in config.items())})"
        tuned = apply_config(first.scenario, config, source=where)
        key = repr(sorted(_flatten(tuned.to_toml_dict()).items()))
        if key in seen:
            continue
        seen.add(key)
        trial_id = "_".join(f"{k.split('.')[-1]}-{_label(v)}" for k, v in config.items()) or "as-given"
        trial_id = "".join(c if c.isalnum() or c in "._-" else "-" for c in trial_id)[:100]
        if any(t.trial_id == trial_id for t in trials):
            raise ScenarioError(
                f"{where}: two trials would share the folder {trial_id!r}; use distinct values"
            )
        extra = _trial_overrides(sweep_name, fraction, arm_id, trial_id)
        trials.append(Trial(trial_id, config, apply_config(tuned, {}, source=where, extra=extra)))
    return tuple(trials)


def plan_tuning(
    table: Any, axes: tuple[Axis, ...], runs: tuple[SweepRun, ...], *, source: str, sweep_name: str
) -> TunePlan:
    """The tuning of a sweep: its arms, each with its trials, every scenario validated.

    Every run's scenario is also checked with every grid point, so that whichever
    configuration an arm chooses, its runs are valid before anything trains.

    Args:
        table: the sweep's ``tune`` table (see :func:`parse_tune_table`).
        axes: the sweep's axes.
        runs: the sweep's runs, first axis slowest; an arm's first run is its trials' base.
        source: the file name, for error messages.
        sweep_name: the sweep's name; trials are named ``<sweep_name>.tune.<arm>.<trial>``.

    Returns:
        The plan: the grid, ``by``, the validation share and every arm with its trials.

    Raises:
        ScenarioError: one line naming the file and the key, for a malformed
            ``tune`` table or a grid point that makes a trial or a run invalid.
    """
    try:
        grid, by, fraction = parse_tune_table(table, axes)
    except ScenarioError as err:
        raise ScenarioError(f"{source}: {err}") from None
    by_axes = tuple(a for a in axes if a.name in by)
    groups: dict[tuple[str, ...], list[SweepRun]] = {}
    for run in runs:
        groups.setdefault(tuple(run.labels[a.name] for a in by_axes), []).append(run)
    arms = []
    for labels, members in groups.items():
        arm_id = _run_id(by_axes, labels) if by_axes else "all"
        trials = _arm_trials(members[0], grid, fraction, arm_id, source=source, sweep_name=sweep_name)
        for run in members[1:]:
            for trial in trials:
                apply_config(run.scenario, trial.config, source=f"{source} (sweep run {run.run_id}, tuned)")
        arms.append(
            TuneArm(
                arm_id=arm_id,
                labels={a.name: label for a, label in zip(by_axes, labels, strict=True)},
                trials=trials,
                run_ids=tuple(r.run_id for r in members),
            )
        )
    return TunePlan(grid=grid, by=by, validation_fraction=fraction, arms=tuple(arms))
