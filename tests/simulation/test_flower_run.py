"""``flwr run .``: a scenario through Flower's own CLI gives the results and run folder of ``fedsim run``."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.cli import ROOT, fedsim, read_csv

TIMING = {"round_s"}


def _without_timing(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


@pytest.mark.slow
def test_flwr_run_gives_the_results_and_run_folder_of_fedsim_run(tmp_path):
    # Arrange: Flower's home (its local SuperLink's database and logs) in tmp_path, and no dependency
    # installation at run time (offline: Flower would otherwise build an environment with uv)
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "FLWR_HOME": str(tmp_path / "flwr"),
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",  # flwr starts flower-superlink
    }
    via_flwr, via_fedsim = tmp_path / "flwr-run", tmp_path / "fedsim-run"
    # Act
    try:
        proc = subprocess.run(
            [
                f"{bin_dir}/flwr", "run", ".", "--stream",
                "--run-config", f"out='{via_flwr}' overrides='federation.rounds=2'",
                "--federation-config", "num-supernodes=3 client-resources-num-cpus=1",
            ],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    finally:  # the local SuperLink flwr started runs on, detached; its database is under FLWR_HOME
        subprocess.run(["pkill", "-f", f"flower-superlink.*{tmp_path}"], check=False)
    reference = fedsim(
        "run", "scenarios/digits-smoke.toml", "--out", str(via_fedsim), "--set", "federation.rounds=2"
    )
    # Assert: flwr ran fedsim's ServerApp, which wrote the whole run folder
    assert proc.returncode == 0 and reference.returncode == 0, proc.stdout + proc.stderr
    assert f"flwr run: digits-smoke.toml → {via_flwr}" in proc.stdout
    assert "round 2/2" in proc.stdout and (via_flwr / "report.md").is_file()
    assert sorted(p.name for p in via_flwr.iterdir()) == sorted(p.name for p in via_fedsim.iterdir())
    # Assert: the same rounds, clients and summary, to the last digit
    for name in ("rounds", "clients"):
        assert _without_timing(read_csv(via_flwr / f"{name}.csv")) == _without_timing(
            read_csv(via_fedsim / f"{name}.csv")
        ), name
    a, b = (json.loads((d / "summary.json").read_text()) for d in (via_flwr, via_fedsim))
    for key in ("final_accuracy", "final_loss", "epsilon_max", "rounds_completed"):
        assert a[key] == b[key], key
    assert {k: v for k, v in a["audit"].items() if k != "audit_s"} == {
        k: v for k, v in b["audit"].items() if k != "audit_s"
    }
