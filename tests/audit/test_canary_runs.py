"""The canary audit end to end on real data (digits, Flower + Ray): power, soundness, a broken mechanism."""

import json

import pytest

from fedsim.privacy.canaries import TEST_NOISE_DIVISOR_ENV
from tests.fixtures.cli import fedsim, read_csv

pytestmark = pytest.mark.slow


def test_the_canary_sweep_shows_leakage_without_dp_and_stays_below_each_epsilon(tmp_path):
    # Act: scenarios/canary-audit.toml --quick: one seed, no DP and sample-level DP at ε 8, 3 and 1
    done = fedsim("run", "scenarios/canary-audit.toml", "--quick", "--out", str(tmp_path / "sweep"))
    # Assert
    assert done.returncode == 0, done.stderr
    rows = {r["protection"]: r for r in read_csv(tmp_path / "sweep" / "runs.csv")}
    assert float(rows["none"]["canary_epsilon"]) >= 3.0  # power: the bar for 1,000 canaries
    for label, epsilon in (("eps-8", 8.0), ("eps-3", 3.0), ("eps-1", 1.0)):
        row = rows[label]
        assert float(row["epsilon_max"]) == pytest.approx(epsilon, abs=0.01)
        assert float(row["canary_epsilon"]) <= float(row["epsilon_max"]) and row["canary_exceeds"] == "False"
    assert float(rows["eps-8"]["canary_epsilon"]) > float(rows["eps-1"]["canary_epsilon"])
    report = (tmp_path / "sweep" / "report.md").read_text()
    assert "## Canary audit" in report and (tmp_path / "sweep" / "canaries.png").exists()


def test_ten_times_less_noise_than_the_ledger_records_is_caught(tmp_path, monkeypatch):
    # Arrange: a test-only hook (an environment variable the Ray workers inherit; no scenario key)
    monkeypatch.setenv(TEST_NOISE_DIVISOR_ENV, "10")
    out = tmp_path / "run"
    # Act
    done = fedsim(
        "run",
        "scenarios/digits-smoke.toml",
        "--set",
        "audit.canaries=1000",
        "--set",
        "privacy.target-epsilon=1",
        "--out",
        str(out),
    )
    # Assert: the ledger still claims ε 1; the canaries show far more, and the run says so
    assert done.returncode == 0, done.stderr
    audit = json.loads((out / "summary.json").read_text())["audit"]
    assert audit["epsilon_exceeded"] is True
    strongest = max(audit["canaries"], key=lambda c: c["epsilon_lower_bound"])
    assert strongest["epsilon"] == pytest.approx(1.0, abs=0.01)
    assert strongest["epsilon_lower_bound"] > 2.0 and strongest["exceeds"] is True
    assert "above the accountant's ε" in done.stdout
    assert "**ε̂ exceeds the accountant's ε.**" in (out / "report.md").read_text()
