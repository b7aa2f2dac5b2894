"""Experiment tracking through the real libraries: what a run and a sweep logged, read back with MLflow's
client and TensorBoard's event reader; and the errors before training when a backend cannot be used."""

import json
import sys

import pytest

from fedsim.tracking import TrackingError, TrackingSpec, open_tracking
from tests.fixtures.cli import fedsim, read_csv

SWEEP = """
name = "tracked-sweep"
[data]
dataset = "digits"
[federation]
num-clients = 3
rounds = 1
local-epochs = 1
batch-size = 128
learning-rate = 2.0
[tracking]
mlflow = true
[sweep]
"privacy.target-epsilon" = [8, inf]
"""


def _mlflow(uri: str):
    import mlflow

    return mlflow.MlflowClient(uri)


@pytest.mark.parametrize(
    ("backend", "module"), [("mlflow", "mlflow"), ("tensorboard", "torch.utils.tensorboard")]
)
def test_a_missing_package_is_a_one_line_error_naming_what_to_install(tmp_path, monkeypatch, backend, module):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(TrackingError, match=rf"^tracking\.{backend} needs .*: pip install "):
        open_tracking(TrackingSpec(backends=(backend,)), name="x", run_dir=tmp_path / "run", params={})


def test_an_unreachable_server_stops_the_run_before_training(tmp_path):
    # Act: nothing listens on port 9 (discard)
    out = tmp_path / "run"
    proc = fedsim(
        "run", "scenarios/digits-smoke.toml", "--out", str(out),
        "--set", "tracking.mlflow=true", "--set", "tracking.mlflow-uri=http://127.0.0.1:9",
    )  # fmt: skip
    # Assert: exit 2, one error line naming the store, no round trained, nothing written
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "tracking: MLflow at http://127.0.0.1:9 cannot be used" in errors[0]
    assert "round 1" not in proc.stdout and not out.exists()


@pytest.mark.slow
def test_a_run_logs_its_rounds_settings_summary_and_report_to_both_backends(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # Act
    out = tmp_path / "run"
    proc = fedsim(
        "run", "scenarios/digits-smoke.toml", "--out", str(out), "--set", "federation.rounds=2",
        "--set", "tracking.mlflow=true", "--set", "tracking.tensorboard=true",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rounds = read_csv(out / "rounds.csv")
    summary = json.loads((out / "summary.json").read_text())
    # Assert (MLflow, the default SQLite store in the run folder): one finished run with every round
    client = _mlflow(f"sqlite:///{out / 'tracking' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("digits-smoke").experiment_id])
    assert run.info.status == "FINISHED" and f"MLflow run {run.info.run_id}" in proc.stdout
    for name in ("accuracy", "epsilon_max", "clients_trained", "round_s"):
        history = client.get_metric_history(run.info.run_id, name)
        assert [(m.step, m.value) for m in history] == [(int(r["round"]), float(r[name])) for r in rounds], (
            name
        )
    assert run.data.params["federation.rounds"] == "2" and run.data.params["privacy.target-epsilon"] == "8.0"
    assert run.data.metrics["summary.final_accuracy"] == summary["final_accuracy"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.md", "report.html", "summary.json", "rounds.csv", "accuracy_loss.png"} <= artifacts
    # Assert (TensorBoard): the same rounds as scalars, in the run folder
    events = EventAccumulator(str(out / "tracking" / "tensorboard" / "digits-smoke"))
    events.Reload()
    scalars = events.Scalars("accuracy")
    assert [(e.step, pytest.approx(e.value)) for e in scalars] == [
        (int(r["round"]), float(r["accuracy"])) for r in rounds
    ]
    assert events.Scalars("summary/final_accuracy")[0].value == pytest.approx(summary["final_accuracy"])


@pytest.mark.slow
def test_a_sweeps_runs_are_child_runs_tagged_with_their_axis_labels(tmp_path):
    # Act
    path, out = tmp_path / "sweep.toml", tmp_path / "out"
    path.write_text(SWEEP)
    proc = fedsim("run", str(path), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    # Assert: one parent run (the sweep) in the sweep folder's store, and one child per run
    client = _mlflow(f"sqlite:///{out / 'tracking' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("tracked-sweep").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = {r.info.run_name: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert [p.info.run_name for p in parents] == ["tracked-sweep"]
    assert sorted(children) == ["target-epsilon-8", "target-epsilon-inf"]
    for name, child in children.items():
        assert child.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert child.data.tags["axis.privacy.target-epsilon"] == name.removeprefix("target-epsilon-")
        summary = json.loads((out / "runs" / name / "summary.json").read_text())
        assert child.data.metrics["summary.final_accuracy"] == summary["final_accuracy"]
    assert "runs.csv" in {a.path for a in client.list_artifacts(parents[0].info.run_id)}
