"""End to end through the real Flower simulation engine on Ray (no mocks)."""

import json

import pytest

from tests.fixtures.cli import fedsim, read_csv


@pytest.mark.slow
def test_digits_smoke_run_through_ray(tmp_path):
    # Arrange
    out = tmp_path / "run"
    # Act
    proc = fedsim("run", "scenarios/digits-smoke.toml", "--out", str(out))
    # Assert
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "round 3/3" in proc.stdout and "Traceback" not in proc.stdout + proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "complete"
    assert summary["rounds_completed"] == 3 and summary["num_clients"] == 3
    assert summary["final_accuracy"] > 0.5  # chance is 0.1
    assert 0 < summary["epsilon_max"] <= 8.0 and summary["delta"] == 1e-5
    for key in ("scenario", "dataset", "model", "final_loss", "wall_s"):
        assert key in summary

    rounds = read_csv(out / "rounds.csv")
    assert list(rounds[0]) == [
        "round",
        "accuracy",
        "loss",
        "epsilon_max",
        "epsilon_mean",
        "clients_trained",
        "clients_failed",
        "train_loss",
        "round_s",
        "clients_skipped",
        "noise_multiplier",
        "max_grad_norm",
        "user_noise_multiplier",
        "clipping_norm",
        "user_epsilon",
        "failed_clients",
        "test_examples",
    ]
    assert [int(r["round"]) for r in rounds] == [0, 1, 2, 3]
    assert {r["test_examples"] for r in rounds} == {"450"}  # the whole digits test set, every round
    eps = [float(r["epsilon_max"]) for r in rounds]
    assert eps == sorted(eps) and eps[-1] == pytest.approx(summary["epsilon_max"])
    assert all(int(r["clients_trained"]) == 3 for r in rounds[1:])

    clients = read_csv(out / "clients.csv")
    assert list(clients[0])[:4] == ["client", "examples", "rounds_trained", "epsilon"]
    assert sum(int(c["examples"]) for c in clients) == 1347
    assert all(int(c["rounds_trained"]) == 3 for c in clients)
    assert max(float(c["epsilon"]) for c in clients) == pytest.approx(summary["epsilon_max"])

    # The ledger's ε equals Opacus's accountant over each client's real history.
    from fedsim.privacy import compute_epsilon

    c0 = clients[0]
    history = ((float(c0["noise_multiplier"]), float(c0["sample_rate"]), 5 * 4),) * 3
    assert compute_epsilon(history, delta=1e-5, accountant="rdp") == pytest.approx(float(c0["epsilon"]))

    report = (out / "report.md").read_text()
    for name in ("accuracy_loss.png", "epsilon.png", "partition.png"):
        assert f"]({name})" in report and (out / name).stat().st_size > 1000
    assert "digits-smoke" in (out / "scenario.toml").read_text()


@pytest.mark.slow
def test_fraction_train_samples_a_cohort(tmp_path):
    out = tmp_path / "run"
    proc = fedsim(
        "run",
        "scenarios/digits-smoke.toml",
        "--out",
        str(out),
        "--set",
        "federation.fraction-train=0.5",
        "--set",
        "federation.num-clients=4",
        "--set",
        "federation.rounds=2",
        "--set",
        "federation.local-epochs=1",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rounds = read_csv(out / "rounds.csv")
    assert [int(r["clients_trained"]) for r in rounds[1:]] == [2, 2]
    clients = read_csv(out / "clients.csv")
    assert sum(int(c["rounds_trained"]) for c in clients) == 4
    # A client that trained fewer rounds spent less than one that trained more (or nothing at all).
    by_rounds = {int(c["rounds_trained"]): float(c["epsilon"]) for c in clients}
    assert by_rounds.get(0, 0.0) == 0.0
    if 1 in by_rounds and 2 in by_rounds:
        assert by_rounds[1] < by_rounds[2] <= 8.0
