"""The RNN end to end through the real Flower simulation on Ray: KJV text and FEMNIST-style files."""

import json
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures import hub_files
from tests.fixtures.cli import ROOT, fedsim, read_csv


@pytest.mark.slow
def test_lstm_on_a_slice_of_kjv_with_one_client_per_book(tmp_path):
    # Arrange: the shipped scenario, cut to a small slice (2 rounds, 3 books per round, few windows)
    out = tmp_path / "run"
    overrides = {
        "data.window-stride": "400",
        "data.max-train-windows-per-user": "40",
        "data.max-test-windows": "500",
        "federation.rounds": "2",
        "federation.fraction-train": "0.05",
        "federation.local-steps": "2",
        "federation.batch-size": "16",
    }
    sets = [arg for key, value in overrides.items() for arg in ("--set", f"{key}={value}")]
    # Act
    proc = fedsim("run", "scenarios/kjv-lstm.toml", "--out", str(out), *sets)
    # Assert
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "lstm" and summary["partitioner"] == "natural-id"
    assert summary["num_clients"] == 66 and summary["test_examples"] == 500
    # one client per book, in canonical order; the classes are the corpus's characters
    assert summary["client_users"][:2] == ["Ge", "Exo"] and summary["client_users"][-1] == "Rev"
    assert len(summary["class_names"]) == summary["num_classes"] == 62 and " " in summary["class_names"]
    # the baseline is the share of the most frequent next character (the space) in the test set
    from fedsim.data import load_dataset
    from fedsim.scenario import build_run_spec, load_scenario

    _, test = load_dataset(
        build_run_spec(
            load_scenario(ROOT / "scenarios/kjv-lstm.toml", [f"{k}={v}" for k, v in overrides.items()])
        ).data
    )
    assert summary["baseline_accuracy"] == pytest.approx(np.bincount(test.y).max() / 500)
    assert 0 < summary["epsilon_max"] <= 8.0
    clients = read_csv(out / "clients.csv")
    sizes = [int(c["examples"]) for c in clients]
    assert len(clients) == 66 and min(sizes) >= 1 and max(sizes) == 40 and min(sizes) < 40  # uneven books
    assert sum(int(c["rounds_trained"]) for c in clients) == 2 * 3
    partition = read_csv(out / "partition.csv")
    assert len(partition) == 66 and len(partition[0]) == 1 + summary["num_classes"]
    assert "![label distribution and size per client](partition.png)" in (out / "report.md").read_text()


@pytest.mark.slow
def test_lstm_on_femnist_style_parquet_learns_with_dp(tmp_path):
    # Arrange: FEMNIST's columns (image, writer_id, character) from scikit-learn digits, 3 writers
    files = hub_files.femnist_like(tmp_path, writers=3)
    scenario = tmp_path / "femnist.toml"
    scenario.write_text(
        'name = "femnist-lstm"\n'
        "[data]\n"
        'dataset = "femnist"\n'
        'partitioner = "natural-id"\n'
        f'data-files = {{ train = "{Path(files["train"]).name}" }}\n'
        "[model]\n"
        'name = "lstm"\n'
        "[federation]\n"
        "num-clients = 3\nrounds = 6\nlocal-epochs = 5\nbatch-size = 128\n"
        "learning-rate = 2.0\nmomentum = 0.0\n"
        "[privacy]\n"
        'target-epsilon = 8.0\ngrad-sample-mode = "hooks"\n'
    )
    out = tmp_path / "run"
    # Act
    proc = fedsim("run", str(scenario), "--out", str(out))
    # Assert: the writers are the clients; DP training beats the majority-class baseline by far
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"] == "femnist" and summary["num_clients"] == 3
    assert summary["baseline_accuracy"] < 0.2  # ten digits, about equally frequent
    assert summary["final_accuracy"] > 0.5, summary
    assert 0 < summary["epsilon_max"] <= 8.0
