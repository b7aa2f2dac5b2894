"""A sweep through the command line: every run, the sweep report, and resuming an interrupted sweep."""

import csv
import json
import math
import signal
import subprocess
import sys
import time

import pytest

from tests.fixtures.cli import ROOT, checkpoint_round, fedsim, read_csv

SWEEP = """
name = "sweep-smoke"
[data]
dataset = "digits"
[federation]
num-clients = 3
rounds = 2
local-epochs = 3
batch-size = 128
learning-rate = 2.0
[sweep]
"privacy.target-epsilon" = [8, inf]
"""


@pytest.mark.slow
def test_sweep_runs_reports_and_resumes(tmp_path):
    # Arrange
    path = tmp_path / "sweep.toml"
    path.write_text(SWEEP)
    out = tmp_path / "out"
    # Act
    first = fedsim("run", str(path), "--out", str(out))
    # Assert: every run, and a report whose figures are the runs' own
    assert first.returncode == 0, first.stderr
    manifest = json.loads((out / "sweep.json").read_text())
    assert manifest["status"] == "complete"
    assert [r["run_id"] for r in manifest["runs"]] == ["target-epsilon-8", "target-epsilon-inf"]
    for name in ("report.md", "report.html", "frontier.png", "audit.png", "accuracy_rounds.png"):
        assert (out / name).stat().st_size > 0, name
    runs = {r["run_id"]: r for r in read_csv(out / "runs.csv")}
    for run_id, row in runs.items():
        summary = json.loads((out / "runs" / run_id / "summary.json").read_text())
        assert float(row["final_accuracy"]) == summary["final_accuracy"]
        assert float(row["auc_loss"]) == summary["audit"]["attacks"][0]["auc"]
    private = json.loads((out / "runs" / "target-epsilon-8" / "summary.json").read_text())
    assert private["privacy_mode"] == "sample" and 7.9 < private["epsilon_max"] <= 8.0
    reference = json.loads((out / "runs" / "target-epsilon-inf" / "summary.json").read_text())
    assert reference["privacy_mode"] == "none" and reference["epsilon_max"] is None
    with (out / "summary.csv").open() as f:
        cells = {c["protection"]: c for c in csv.DictReader(f)}
    assert float(cells["target-epsilon=8"]["accuracy_mean"]) == private["final_accuracy"]
    assert math.isclose(float(cells["target-epsilon=8"]["x_epsilon"]), private["epsilon_max"])
    assert cells["target-epsilon=inf"]["x_epsilon"] == ""  # the reference line, not a point
    text = (out / "report.md").read_text()
    assert "2 of 2 runs complete." in text
    assert f"| {100 * private['final_accuracy']:.2f} |" in text  # one seed: no spread shown

    # Act: an interrupted sweep (the second run never finished) is run again
    stamp = (out / "runs" / "target-epsilon-8" / "summary.json").stat().st_mtime_ns
    (out / "runs" / "target-epsilon-inf" / "summary.json").unlink()
    second = fedsim("run", str(path), "--out", str(out))
    # Assert: the complete run is skipped, the other one runs again
    assert second.returncode == 0, second.stderr
    assert "[1/2] target-epsilon-8: already complete, skipped" in second.stdout
    assert "[2/2] target-epsilon-inf\n" in second.stdout
    assert (out / "runs" / "target-epsilon-8" / "summary.json").stat().st_mtime_ns == stamp
    assert json.loads((out / "sweep.json").read_text())["status"] == "complete"


def test_sweep_refuses_a_folder_that_is_not_a_sweep(tmp_path):
    # Arrange
    path = tmp_path / "sweep.toml"
    path.write_text(SWEEP)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    # Act
    result = fedsim("run", str(path), "--out", str(tmp_path / "busy"))
    # Assert
    assert result.returncode == 2
    assert "not empty and not an earlier fedsim sweep (no sweep.json)" in result.stderr
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"


# A short run, then a long one: Ctrl-C after the second run's first round lands while it trains
# (19 more rounds and its audit), however fast the machine; no DP, so each round is quick
LONG_SECOND_RUN = """
name = "sweep-ctrl-c"
[data]
dataset = "digits"
[federation]
num-clients = 3
local-epochs = 3
batch-size = 128
[privacy]
mode = "none"
[sweep]
"federation.rounds" = [1, 20]
"""


@pytest.mark.slow
def test_ctrl_c_stops_a_sweep_and_the_same_command_resumes_it(tmp_path):
    # Arrange: start the sweep and wait until its second run has checkpointed its first round
    path = tmp_path / "sweep.toml"
    path.write_text(LONG_SECOND_RUN)
    out = tmp_path / "out"
    second = out / "runs" / "rounds-20"
    command = [sys.executable, "-m", "fedsim.cli", "run", str(path), "--out", str(out)]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600  # only a sweep that never gets there fails here
    while proc.poll() is None and checkpoint_round(second) < 1:
        assert time.monotonic() < deadline, "the second run never finished its first round"
        time.sleep(0.1)
    assert proc.poll() is None, "the sweep ended before it could be interrupted: " + proc.stderr.read()
    # Act: Ctrl-C
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=90)
    # Assert: it stops at once, says how to resume, and shows no report as complete
    assert proc.returncode == 130, stdout + stderr
    assert "the same command again for a sweep" in stderr
    manifest = json.loads((out / "sweep.json").read_text())
    assert manifest["status"] == "interrupted"
    assert [r["status"] for r in manifest["runs"]] == ["complete", "interrupted"]
    assert manifest["runs"][1]["dir"] == "runs/rounds-20"
    assert not (out / "report.md").exists() and not (second / "summary.json").exists()
    done = checkpoint_round(second)
    assert 1 <= done < 20
    # Act: the same command again
    again = fedsim("run", str(path), "--out", str(out))
    # Assert: the first run is skipped, the interrupted one continues from its last round
    assert again.returncode == 0, again.stderr
    assert "[1/2] rounds-1: already complete, skipped" in again.stdout
    assert "[2/2] rounds-20\n" in again.stdout and f"resuming after round {done}\n" in again.stdout
    summary = json.loads((second / "summary.json").read_text())
    assert summary["resumed_from_round"] == done and summary["rounds_completed"] == 20
    assert [int(r["round"]) for r in read_csv(second / "rounds.csv")] == list(range(21))
    assert not (second / "checkpoint.pt").exists()
    assert json.loads((out / "sweep.json").read_text())["status"] == "complete"
    assert "2 of 2 runs complete." in (out / "report.md").read_text()
