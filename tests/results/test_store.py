import json

import pytest

from fedsim.results import ClientRecord, RoundRecord, RunResult, load_run, save_run
from fedsim.results.store import RunDirError


def sample_result():
    return RunResult(
        summary={"scenario": "t", "final_accuracy": 0.5, "epsilon_max": 1.5},
        rounds=[
            RoundRecord(0, 0.1, 2.3, 0.0, 0.0, 0, 0, None, 0.0),
            RoundRecord(1, 0.5, 1.2, 1.5, 1.4, 2, 0, 1.3, 2.5),
        ],
        clients=[ClientRecord(0, 10, 1, 1.5, 1.1, 0.1), ClientRecord(1, 12, 1, 1.3, 1.1, 0.1)],
        scenario={"name": "t", "seed": 0, "data": {"dataset": "digits"}},
        label_counts=[[5, 5], [6, 6]],
    )


def test_round_trip(tmp_path):
    # Arrange / Act
    out = save_run(sample_result(), tmp_path / "run")
    loaded = load_run(out)
    # Assert
    assert loaded.rounds == sample_result().rounds
    assert loaded.clients == sample_result().clients
    assert loaded.scenario == sample_result().scenario
    assert loaded.label_counts == [[5, 5], [6, 6]]
    assert json.loads((out / "summary.json").read_text())["status"] == "complete"
    header = (out / "rounds.csv").read_text().splitlines()[0]
    assert (
        header
        == "round,accuracy,loss,epsilon_max,epsilon_mean,clients_trained,clients_failed,train_loss,round_s"
    )
    assert (
        (out / "clients.csv").read_text().splitlines()[0].startswith("client,examples,rounds_trained,epsilon")
    )


def test_replaces_previous_run_but_not_foreign_folder(tmp_path):
    save_run(sample_result(), tmp_path / "run")
    save_run(sample_result(), tmp_path / "run")  # a fedsim run: replaced
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(RunDirError, match="not empty and not a fedsim run directory"):
        save_run(sample_result(), foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "run"]  # no temp folders left


def test_failed_write_leaves_nothing_marked_complete(tmp_path):
    bad = sample_result()
    bad.summary["not_json"] = float("nan")  # json.dumps(allow_nan=False) fails before any rename
    with pytest.raises(ValueError):
        save_run(bad, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert list(tmp_path.iterdir()) == []


def test_incomplete_run_is_refused(tmp_path):
    out = save_run(sample_result(), tmp_path / "run")
    (out / "rounds.csv").unlink()
    with pytest.raises(RunDirError, match="missing rounds.csv"):
        load_run(out)
