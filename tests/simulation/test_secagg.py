"""SecAgg+ path: legacy strategy hooks, and the secure aggregate against FedAvg's exact one."""

from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from flwr.app import ArrayRecord, MetricRecord
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays

from fedsim.aggregation.legacy import ARRAY_KEYS_KEY, create_legacy_strategy, decode_fit_config
from fedsim.privacy.accounting import RunStopped
from tests.fixtures.cli import ROOT

# --- legacy strategy hooks (no Ray) ---------------------------------------------------------------


class _ClientManager:
    """The client-manager calls legacy FedAvg's configure_fit makes, and fedsim's wait for every client."""

    def __init__(self):
        self.waited_for = None

    def wait_for(self, num_clients, timeout=86400):
        self.waited_for = num_clients
        return True

    def num_available(self):
        return 3

    def sample(self, num_clients, min_num_clients=None):
        return [f"proxy-{i}" for i in range(num_clients)]


def _fit_res(value: float, weight: int, partition_id: int, *, skipped: bool = False) -> FitRes:
    metrics = {
        "partition-id": partition_id,
        "num-examples": weight,
        "weight": weight,
        "skipped": int(skipped),
    }
    return FitRes(Status(Code.OK, ""), ndarrays_to_parameters([np.full(3, value)]), weight, metrics)


def test_legacy_strategy_sends_config_reports_replies_and_evaluates_named_arrays():
    # Arrange
    seen, evaluated = [], []
    initial = ArrayRecord({"w": torch.zeros(3)})
    strategy = create_legacy_strategy(
        "fedavg",
        num_clients=3,
        fraction_train=0.67,
        initial_arrays=initial,
        on_train_replies=lambda replies, errors: seen.append((replies, errors)),
        configure_round=lambda server_round: {"blocked-clients": [2]},
        evaluate_fn=lambda r, arrays: evaluated.append((r, arrays)) or MetricRecord({"loss": 0.5}),
    )
    # Act
    manager = _ClientManager()
    instructions = strategy.configure_fit(1, strategy.initialize_parameters(None), manager)
    assert manager.waited_for == 3  # every client registered before the cohort is sized
    results = [
        (None, _fit_res(1.0, 10, 0)),
        (None, _fit_res(4.0, 30, 1)),
        (None, _fit_res(9.0, 0, 2, skipped=True)),
    ]
    params, _ = strategy.aggregate_fit(1, results, [RuntimeError("node lost")])
    none_trained = strategy.aggregate_fit(2, results[2:], [])
    loss, _ = strategy.evaluate(1, params)
    # Assert: cohort int(3 * 0.67) = 2; lists travel JSON-encoded
    assert len(instructions) == 2
    config = decode_fit_config(instructions[0][1].config)
    assert config == {"server-round": 1, ARRAY_KEYS_KEY: ["w"], "blocked-clients": [2]}
    # (1*10 + 4*30) / 40 = 3.25; the skipped reply is reported but not averaged; float32 kept
    (arr,) = parameters_to_ndarrays(params)
    assert arr.dtype == np.float32 and np.allclose(arr, 3.25)
    assert [r.partition_id for r in seen[0][0]] == [0, 1, 2] and [f.reason for f in seen[0][1]] == [
        "node lost"
    ]
    assert none_trained == (None, {})
    assert evaluated[0][0] == 1 and list(evaluated[0][1].keys()) == ["w"] and loss == 0.5


# --- SecAgg+ through Flower + Ray -----------------------------------------------------------------


@dataclass
class _Recorder:
    """The recorder interface, capturing what the server hands it."""

    blocked: dict = field(default_factory=dict)
    stop_before: int | None = None
    arrays: dict = field(default_factory=dict)
    replies: list = field(default_factory=list)
    errors: list = field(default_factory=list)

    def configure_round(self, server_round):
        if server_round == self.stop_before:
            raise RunStopped("test: stop")
        return {"blocked-clients": self.blocked[server_round]} if server_round in self.blocked else {}

    def on_train_replies(self, replies, errors):
        self.replies.extend(replies)
        self.errors.extend(errors)

    def attach_user_dp(self, wrapper):
        self.wrapper = wrapper

    def on_release(self, server_round, num_aggregated):
        pass

    def evaluate(self, server_round, arrays):
        self.arrays[server_round] = {k: v.clone() for k, v in arrays.to_torch_state_dict().items()}
        return MetricRecord({"loss": 0.0})


def _specs(*overrides, privacy: dict | None = None):
    """digits-smoke with ``privacy`` (default: no DP), 1 round of 1 local epoch, then ``overrides``."""
    import tomllib

    from fedsim.scenario import apply_overrides, build_run_spec, validate_scenario

    raw = tomllib.loads((ROOT / "scenarios/digits-smoke.toml").read_text())
    raw["privacy"] = privacy or {"mode": "none"}
    raw = apply_overrides(raw, ["federation.rounds=1", "federation.local-epochs=1", *overrides])
    return build_run_spec(validate_scenario(raw, source="digits-smoke.toml"))


def _initial_arrays(specs) -> ArrayRecord:
    from fedsim.data import load_dataset
    from fedsim.models import build_model

    train, _ = load_dataset(specs.data)
    model = build_model(
        specs.model,
        input_shape=train.input_shape,
        num_classes=train.num_classes,
        vocab_size=train.vocab_size,
        seed=specs.seed,
    )
    return ArrayRecord(model.state_dict())


def _client_models(specs, initial, config):
    """Every client's round-1 reply, trained in this process as a Ray worker would (one thread)."""
    from fedsim.simulation.client_app import client_round
    from fedsim.simulation.run import client_task

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return [
            client_round(
                client_task(specs),
                partition_id=p,
                server_round=1,
                state_dict=initial.to_torch_state_dict(),
                config=config,
            )
            for p in range(specs.federation.num_clients)
        ]
    finally:
        torch.set_num_threads(threads)


def _weighted_mean(models, weights):
    return {
        k: sum(w * m[k].double() for m, w in zip(models, weights, strict=True)) / sum(weights)
        for k in models[0]
    }


def _max_abs(a, b):
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def _run(specs, recorder, initial, **kwargs):
    from flwr.simulation import run_simulation

    from fedsim.simulation.legacy import create_secagg_client_app, create_secagg_server_app
    from fedsim.simulation.run import backend_config, client_task

    run_simulation(
        server_app=create_secagg_server_app(specs, session=recorder, initial_arrays=initial, **kwargs),
        client_app=create_secagg_client_app(client_task(specs), user_dp=kwargs.get("user_dp")),
        num_supernodes=specs.federation.num_clients,
        backend_name="ray",
        backend_config=backend_config(specs.simulation, verbose=False),
    )


@pytest.mark.slow
def test_secagg_aggregate_equals_fedavg_within_quantisation_error():
    from fedsim.simulation.legacy import SecAggSettings, quantization_error_bound

    # Arrange: 3 digits clients, 1 round, no DP; FedAvg's exact aggregate from the same seeded training
    specs = _specs()
    initial = _initial_arrays(specs)
    recorder = _Recorder()
    replies = _client_models(specs, initial, config={})
    weights = [m["weight"] for _, m in replies]
    plain = _weighted_mean([s for s, _ in replies], weights)
    spread = max(_max_abs(s, plain) for s, _ in replies)
    # Act
    _run(specs, recorder, initial)
    # Assert
    assert sorted(recorder.arrays) == [0, 1]
    assert _max_abs(recorder.arrays[0], initial.to_torch_state_dict()) == 0
    got = {r.partition_id: r.metrics for r in recorder.replies}
    assert sorted(got) == [0, 1, 2] and not recorder.errors
    assert [got[p]["weight"] for p in range(3)] == weights
    assert [got[p]["train-loss"] for p in range(3)] == pytest.approx([m["train-loss"] for _, m in replies])
    bound = quantization_error_bound(
        SecAggSettings(), weights=weights, max_weight=max(weights), spread=spread
    )
    error = _max_abs(recorder.arrays[1], plain)
    assert (
        error <= bound < 1e-4 * spread
    )  # FedAvg's aggregate, to within a small fraction of the client spread
    assert error > 0  # it went through SecAgg+'s stochastic quantisation, not a plain average


@pytest.mark.slow
def test_secagg_with_user_level_dp_clips_updates_skips_blocked_clients_and_stops_early():
    from fedsim.simulation.legacy import SecAggSettings, quantization_error_bound

    # Arrange: client 2 is blocked in round 1; the run is stopped before round 2; no noise (σ = 0)
    user_level = {
        "mode": "user",
        "user-noise-multiplier": 1.0,
        "clip-on": "client",
        "secure-aggregation": True,
    }
    specs = _specs("federation.rounds=2", privacy=user_level)
    initial = _initial_arrays(specs)
    recorder = _Recorder(blocked={1: [2]}, stop_before=2)
    x0 = initial.to_torch_state_dict()
    models = [s for s, _ in _client_models(specs, initial, config={})[:2]]
    updates = [{k: m[k].double() - x0[k].double() for k in x0} for m in models]
    norms = [float(torch.sqrt(sum((u**2).sum() for u in upd.values()))) for upd in updates]
    clipping_norm = 0.5 * min(norms)  # both trained clients are clipped
    clipped = [
        {k: x0[k].double() + u[k] * (clipping_norm / n) for k in x0}
        for u, n in zip(updates, norms, strict=True)
    ]
    expected = _weighted_mean(clipped, [1, 1])  # each client counts once; the skipped one is left out
    spread = max(_max_abs(c, expected) for c in clipped)
    # Act
    _run(specs, recorder, initial, user_dp=(0.0, clipping_norm))
    # Assert
    assert sorted(recorder.arrays) == [0, 1]  # round 2 never started
    got = {r.partition_id: r.metrics for r in recorder.replies}
    assert sorted(got) == [0, 1, 2] and not recorder.errors
    assert got[2]["skipped"] == 1 and [got[p]["weight"] for p in range(3)] == [1, 1, 0]
    bound = quantization_error_bound(SecAggSettings(), weights=[1, 1], max_weight=1, spread=spread)
    assert _max_abs(recorder.arrays[1], expected) <= bound
    unclipped = _weighted_mean(models, [1, 1])
    assert _max_abs(unclipped, expected) > 1000 * bound  # clipping made a difference


def test_legacy_fedprox_sends_its_mu_which_the_client_reads():
    from fedsim.simulation.client_app import proximal_mu

    # Arrange: Flower's legacy FedProx, which SecAgg+ runs, names the key "proximal_mu"
    strategy = create_legacy_strategy(
        "fedprox",
        num_clients=3,
        fraction_train=1.0,
        initial_arrays=ArrayRecord({"w": torch.zeros(3)}),
        on_train_replies=lambda replies, errors: None,
        evaluate_fn=lambda r, arrays: MetricRecord({"loss": 0.0}),
        proximal_mu=0.05,
    )
    # Act
    instructions = strategy.configure_fit(1, strategy.initialize_parameters(None), _ClientManager())
    # Assert: every client's decoded config gives it mu
    assert [proximal_mu(decode_fit_config(fit.config)) for _, fit in instructions] == [0.05] * 3
