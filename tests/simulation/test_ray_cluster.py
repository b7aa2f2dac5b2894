"""A run attached to an existing Ray cluster (``--ray-address``), started here on loopback."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.cli import fedsim

RAY = Path(sys.executable).with_name("ray")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_cluster(tmp_path):
    """``ray start --head --block`` on 127.0.0.1 with 2 CPUs, in its own process group and temp folder.

    Stopped by ending that group, so no other Ray instance of this user is touched.
    """
    port = free_port()
    temp = Path("/tmp") / f"fedsim-ray-{port}"  # Ray's socket paths must stay short
    command = [str(RAY), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}"]
    command += ["--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"]
    head = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while not ready(port):
            assert head.poll() is None and time.monotonic() < deadline, "ray start --head did not come up"
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


def ready(port: int) -> bool:
    """Whether Ray's status command reaches the cluster (its GCS answers)."""
    status = subprocess.run(
        [str(RAY), "status", f"--address=127.0.0.1:{port}"], capture_output=True, timeout=60
    )
    return status.returncode == 0


@pytest.mark.slow
def test_a_run_attaches_to_an_existing_ray_cluster(tmp_path, ray_cluster):
    # Arrange
    out = tmp_path / "run"
    # Act
    proc = fedsim("run", "scenarios/digits-smoke.toml", "--out", str(out), "--ray-address", ray_cluster)
    # Assert
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rounds_completed"] == 3 and summary["final_accuracy"] > 0.5
    scenario = (out / "scenario.toml").read_text()
    assert f'ray-address = "{ray_cluster}"' in scenario
    # the cluster outlives the run: Ray's own status still lists it
    status = subprocess.run([str(RAY), "status", f"--address={ray_cluster}"], capture_output=True, text=True)
    assert status.returncode == 0 and "CPU" in status.stdout, status.stdout + status.stderr


def test_an_unreachable_cluster_is_a_one_line_error(tmp_path):
    proc = fedsim(
        "run",
        "scenarios/digits-smoke.toml",
        "--out",
        str(tmp_path / "run"),
        "--ray-address",
        f"127.0.0.1:{free_port()}",
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "cannot reach a Ray cluster there" in proc.stderr
    assert not (tmp_path / "run").exists()
