"""Every registered strategy end to end through Flower and Ray, under DP-SGD and injected client faults.

``scenarios/strategies.toml --quick``: digits in a Dirichlet(0.5) split over 5 clients, 2 rounds, DP-SGD at
ε 8, and a fault rate of 0.2 (the same seeded clients fail in every run).
"""

import json

import pytest

from fedsim.aggregation import available_strategies
from tests.fixtures.cli import fedsim, read_csv

CHANCE = 0.1022
"""Accuracy of always predicting the most frequent digit on the test split."""


@pytest.mark.slow
def test_every_strategy_trains_under_dp_and_faults_at_the_same_epsilon(tmp_path):
    # Act
    out = tmp_path / "strategies"
    proc = fedsim(
        "run", "scenarios/strategies.toml", "--quick", "--out", str(out), "--set", "faults.rate=0.2"
    )
    # Assert: one complete run per registered strategy
    assert proc.returncode == 0, proc.stdout + proc.stderr
    manifest = json.loads((out / "sweep.json").read_text())
    assert sorted(r["labels"]["strategy"] for r in manifest["runs"]) == available_strategies()
    summaries, failures = {}, {}
    for entry in manifest["runs"]:
        run = out / entry["dir"]
        summaries[entry["labels"]["strategy"]] = json.loads((run / "summary.json").read_text())
        failures[entry["labels"]["strategy"]] = [r["failed_clients"] for r in read_csv(run / "rounds.csv")]
    # every strategy learns (at least 1.5 x chance after two noisy rounds), every client's ε is the
    # ledger's for the same DP-SGD rounds whatever the server does, and the faults hit the same clients
    for name, summary in summaries.items():
        assert summary["final_accuracy"] > 1.5 * CHANCE, name
        assert summary["rounds_completed"] == 2, name
    assert len({s["epsilon_max"] for s in summaries.values()}) == 1
    assert 7.9 < summaries["fedavg"]["epsilon_max"] <= 8.0
    assert len({tuple(f) for f in failures.values()}) == 1 and any(failures["fedavg"])
