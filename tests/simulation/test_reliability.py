"""Runs that survive faults and interruptions, through the real Flower simulation on Ray.

- injected client faults (exception, a Ray worker process that dies, a hang past the
  round timeout): the run completes and each round names the clients that failed;
- a run killed mid-way (SIGKILL to its whole process group) and continued with
  ``fedsim run --resume`` ends with exactly the results of an uninterrupted run.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from fedsim.aggregation.cohorts import sample_cohort
from fedsim.simulation.faults import FaultSpec
from tests.fixtures.cli import ROOT, checkpoint_round, fedsim, read_csv

JOB = [
    "--set",
    "federation.num-clients=5",
    "--set",
    "federation.fraction-train=0.6",
    "--set",
    "federation.rounds=6",
    "--set",
    "federation.strategy=fedavgm",
    "--set",
    "federation.server-momentum=0.5",
    "--set",
    "faults.rate=0.2",
    "--set",
    "audit.enabled=false",
]


def predicted_failures(kind, rate, *, clients, per_round, rounds, seed=0):
    """The partition ids each round's faults hit: the seeded cohort, filtered by the seeded fault draw."""
    spec = FaultSpec(rate=rate, kind=kind, hang_s=0.0, seed=seed)
    return {
        r: [k for k in sample_cohort(seed, r, clients, per_round) if spec.fault(k, r)]
        for r in range(1, rounds + 1)
    }


def failed(rows):
    return {int(r["round"]): [int(k) for k in r["failed_clients"].split()] for r in rows[1:]}


def without_timing(rows):
    return [{k: v for k, v in row.items() if k != "round_s"} for row in rows]


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_results_of_an_uninterrupted_run(tmp_path):
    # Arrange: the uninterrupted run, and the same run killed after its second round
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    proc = fedsim("run", "scenarios/digits-smoke.toml", "--out", str(whole), *JOB)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fedsim.cli",
            "run",
            "scenarios/digits-smoke.toml",
            "--out",
            str(killed),
            *JOB,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: Ray's processes die with it
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and run.poll() is None and checkpoint_round(killed) < 2:
        time.sleep(0.2)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    done = checkpoint_round(killed)
    assert 2 <= done < 6 and not (killed / "summary.json").exists()

    # Act: a fresh run may not overwrite it; --resume continues it
    refused = fedsim("run", "scenarios/digits-smoke.toml", "--out", str(killed), *JOB)
    resumed = fedsim("run", "--resume", str(killed))

    # Assert
    assert refused.returncode == 2 and f"fedsim run --resume {killed}" in refused.stderr
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming after round" in resumed.stdout and "Traceback" not in resumed.stderr
    assert not (killed / "checkpoint.pt").exists()
    assert without_timing(read_csv(killed / "rounds.csv")) == without_timing(read_csv(whole / "rounds.csv"))
    assert read_csv(killed / "clients.csv") == read_csv(whole / "clients.csv")
    a, b = (json.loads((d / "summary.json").read_text()) for d in (whole, killed))
    for key in ("final_accuracy", "final_loss", "epsilon_max", "epsilon_mean", "rounds_completed"):
        assert a[key] == b[key], key
    assert b["resumed_from_round"] == done and a["resumed_from_round"] is None
    # the faults hit exactly the seeded clients, in both runs
    assert failed(read_csv(whole / "rounds.csv")) == predicted_failures(
        "exception", 0.2, clients=5, per_round=3, rounds=6
    )
    assert a["final_accuracy"] > 0.3


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["crash", "hang"])
def test_a_run_survives_dying_and_hanging_clients(tmp_path, kind):
    # Arrange: 4 clients, a quarter of them fail per round; a hang outlasts an 8 s round timeout
    out = tmp_path / kind
    settings = ["federation.num-clients=4", "federation.rounds=3", "faults.rate=0.25", f"faults.kind={kind}"]
    settings += ["audit.enabled=false"] + (["federation.round-timeout=8"] if kind == "hang" else [])
    # Act
    proc = fedsim(
        "run", "scenarios/digits-smoke.toml", "--out", str(out), *[a for s in settings for a in ("--set", s)]
    )
    # Assert
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = read_csv(out / "rounds.csv")
    expected = predicted_failures(kind, 0.25, clients=4, per_round=4, rounds=3)
    assert sum(map(len, expected.values())) >= 2  # the scenario does inject faults
    # A crashed worker's client fails, and so may those sent to its actor while Ray restarts it;
    # a hung client delays what its actor runs next, so more may time out
    assert all(set(expected[r]) <= set(got) for r, got in failed(rows).items())
    assert [int(r["clients_failed"]) for r in rows[1:]] == [len(v) for v in failed(rows).values()]
    assert int(rows[-1]["clients_trained"]) + int(rows[-1]["clients_failed"]) == 4
    assert sum(int(r["clients_trained"]) for r in rows[1:]) > 0
    assert json.loads((out / "summary.json").read_text())["rounds_completed"] == 3
