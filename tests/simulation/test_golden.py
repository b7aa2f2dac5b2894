"""Refactors keep results: a run's rounds.csv and clients.csv equal those saved before the redesign."""

from pathlib import Path

import pytest

from tests.fixtures.cli import fedsim, read_csv

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden"
OVERRIDES = (
    "federation.num-clients=5",
    "federation.fraction-train=0.6",
    "federation.strategy=fedavgm",
    "federation.server-momentum=0.5",
)
TIMING = {"round_s"}


@pytest.mark.slow
def test_digits_smoke_fedavgm_results_equal_the_saved_ones(tmp_path):
    # Arrange: digits-smoke (DP-SGD at ε 8) with 3 of 5 clients per round and FedAvgM, as saved
    # from fedsim before the "one room per concept" redesign (tests/fixtures/golden)
    out = tmp_path / "run"
    args = [a for o in OVERRIDES for a in ("--set", o)]
    # Act
    proc = fedsim("run", "scenarios/digits-smoke.toml", "--out", str(out), *args)
    # Assert: every column but the round's wall time, to the last digit
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("rounds", "clients"):
        got = read_csv(out / f"{name}.csv")
        want = read_csv(GOLDEN / f"digits-smoke-fedavgm-{name}.csv")
        assert [list(r) for r in got] == [list(r) for r in want]
        strip = [{k: v for k, v in r.items() if k not in TIMING} for r in got]
        assert strip == [{k: v for k, v in r.items() if k not in TIMING} for r in want], name
