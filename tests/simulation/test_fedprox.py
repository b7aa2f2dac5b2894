"""FedProx's proximal term on real clients: it reduces client drift and leaves the privacy event as it was."""

from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
DIRICHLET = [
    "data.partitioner=dirichlet",
    "data.alpha=0.1",
    "data.min-partition-size=20",
    "federation.num-clients=5",
    "federation.local-epochs=5",
    "federation.batch-size=32",
    "federation.learning-rate=0.5",
]


def _drift(mode: str, mu: float) -> tuple[list[float], list[dict]]:
    """Each client's update norm ||w_k - w_global|| after one round on digits, and its metrics."""
    from fedsim.models import build_model
    from fedsim.scenario import build_run_spec, load_scenario
    from fedsim.simulation.client_app import run_client_round
    from fedsim.simulation.run import client_task
    from fedsim.simulation.shards import client_shard

    privacy = [] if mode == "sample" else ["privacy.mode=none"]
    scenario = load_scenario(ROOT / "scenarios/digits-smoke.toml", [*DIRICHLET, *privacy])
    task = client_task(build_run_spec(scenario))
    shard = client_shard(task.data, task.partition, 0)
    torch.manual_seed(0)
    start = build_model(
        task.model, input_shape=shard.input_shape, num_classes=shard.num_classes, vocab_size=shard.vocab_size
    ).state_dict()
    norms, metrics = [], []
    for pid in range(5):
        state, m = run_client_round(task, partition_id=pid, server_round=1, state_dict=start, proximal_mu=mu)
        norms.append(float(torch.sqrt(sum(((state[k] - start[k]) ** 2).sum() for k in start))))
        metrics.append(m)
    return norms, metrics


@pytest.mark.parametrize("mode", ["none", "sample"])
def test_proximal_term_reduces_client_drift_on_a_dirichlet_split(mode):
    # Act: the same clients, seeds and global model, with FedAvg's local step and with FedProx's (mu = 1)
    fedavg, _ = _drift(mode, 0.0)
    fedprox, _ = _drift(mode, 1.0)
    # Assert: every client moves less from the global model, and on average by at least a fifth less
    assert all(p < a for p, a in zip(fedprox, fedavg, strict=True)), (fedprox, fedavg)
    assert np.mean(fedprox) < 0.8 * np.mean(fedavg), (fedprox, fedavg)


def test_proximal_term_leaves_each_clients_privacy_event_unchanged():
    # Act
    _, fedavg = _drift("sample", 0.0)
    _, fedprox = _drift("sample", 1.0)
    # Assert: the same sigma, Poisson rate and steps, so the ledger composes the same epsilon
    keys = ("noise-multiplier", "sample-rate", "steps", "num-examples")
    assert [{k: m[k] for k in keys} for m in fedprox] == [{k: m[k] for k in keys} for m in fedavg]
