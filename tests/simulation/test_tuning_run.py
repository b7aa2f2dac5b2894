"""Tuning through a sweep: trials on a validation split, the best one chosen, the arm's runs trained with it."""

import dataclasses
import json
import math
import tomllib

import numpy as np
import pytest
from rich.console import Console

import fedsim.data.registry as registry
from fedsim.commands.tune import run_tuning
from fedsim.scenario.sweeps import expand_sweep
from tests.fixtures.cli import fedsim

SWEEP = """
name = "tune-smoke"
[data]
dataset = "digits"
[federation]
num-clients = 3
rounds = 2
local-epochs = 2
batch-size = 64
learning-rate = 0.1
[privacy]
target-delta = 1e-5
[audit]
max-examples = 200
[sweep]
protection = [
  { label = "fl", privacy = { mode = "none" } },
  { label = "eps-8", privacy = { mode = "sample", target-epsilon = 8.0 } },
]
[sweep.tune]
"federation.learning-rate" = [0.001, 1.0]
"""
VALIDATION = round(0.1 * 1347)  # digits: 1,347 training images, 10 % held out; the test set has 450


@pytest.mark.slow
def test_each_arm_trains_with_its_best_trial_on_validation(tmp_path):
    # Arrange
    path = tmp_path / "tune.toml"
    path.write_text(SWEEP)
    out = tmp_path / "out"
    # Act
    first = fedsim("run", str(path), "--out", str(out))
    # Assert: two arms of two trials, each trial scored on the validation split
    assert first.returncode == 0, first.stderr
    record = json.loads((out / "tune.json").read_text())
    assert [a["arm_id"] for a in record["arms"]] == ["protection-fl", "protection-eps-8"]
    for arm in record["arms"]:
        scores = {}
        for trial in arm["trials"]:
            summary = json.loads((out / trial["dir"] / "summary.json").read_text())
            assert summary["test_examples"] == VALIDATION and summary["audit"] is None
            assert trial["validation_accuracy"] == summary["final_accuracy"]
            scores[trial["trial_id"]] = summary["final_accuracy"]
        # the chosen trial is the best on validation (here the usable learning rate)
        assert arm["chosen"] == max(scores, key=scores.get) == "learning-rate-1"
        for run_id in arm["run_ids"]:
            run = tomllib.loads((out / "runs" / run_id / "scenario.toml").read_text())
            assert run["federation"]["learning-rate"] == 1.0 and "validation-fraction" not in run["data"]
            assert json.loads((out / "runs" / run_id / "summary.json").read_text())["test_examples"] == 450
    trial_report = (out / "tune" / "protection-eps-8" / "learning-rate-1" / "report.md").read_text()
    assert "Evaluated on a validation split" in trial_report
    assert first.stdout.count("validation accuracy") == 4 and first.stdout.count("test accuracy") == 2
    report = (out / "report.md").read_text()
    assert "## Tuning" in report and "The test set is never read while tuning." in report
    assert "4 trials in all" in report and "The tuning is not in any ε shown here." in report

    # Act: the sweep again
    second = fedsim("run", str(path), "--out", str(out))
    # Assert: trials and runs are all skipped
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("already complete, skipped") == 4 + 2
    assert json.loads((out / "tune.json").read_text()) == record  # written again, the same choices
    assert "## Tuning" in (out / "report.md").read_text()


@pytest.fixture
def poisoned_test_set(monkeypatch):
    """Digits whose test images are all NaN, in this process (where the server evaluates)."""
    real = registry.dataset_info("digits")

    def loader(spec):
        train, test = real.loader(spec)
        return train, dataclasses.replace(test, x=np.full_like(test.x, np.nan))

    monkeypatch.setitem(registry._DATASETS, "digits", dataclasses.replace(real, loader=loader))
    registry.load_dataset.cache_clear()
    yield
    registry.load_dataset.cache_clear()


@pytest.mark.slow
@pytest.mark.usefixtures("poisoned_test_set")
def test_tuning_never_reads_the_test_set(tmp_path):
    # Arrange: one arm (DP-SGD at ε 8); evaluating a single NaN test image would make its loss NaN
    raw = tomllib.loads(SWEEP)
    raw["sweep"]["protection"] = raw["sweep"]["protection"][1:]
    plan = expand_sweep(raw, source="tune.toml").tune
    quiet = Console(quiet=True)
    # Act
    record = run_tuning(plan, tmp_path, console=quiet, errors=quiet, verbose=False, source="tune.toml")
    # Assert: both trials finished with finite losses on the validation split
    (arm,) = record["arms"]
    assert [t["status"] for t in arm["trials"]] == ["complete", "complete"]
    for trial in arm["trials"]:
        rounds = (tmp_path / trial["dir"] / "rounds.csv").read_text().splitlines()[1:]
        losses = [float(line.split(",")[2]) for line in rounds]
        assert all(math.isfinite(loss) for loss in losses), losses
    assert arm["chosen"] == "learning-rate-1" and arm["trials"][1]["validation_accuracy"] > 0.3  # chance: 0.1
