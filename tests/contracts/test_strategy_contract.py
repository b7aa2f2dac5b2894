"""Contract of every registered strategy: example-weighted FedAvg aggregate, replies reach the hook,
and every registry entry builds, keeps the server state it names and checkpoints it exactly."""

import io

import numpy as np
import pytest
import torch
from flwr.app import ArrayRecord, ConfigRecord, Error, Message, MessageType, MetricRecord, RecordDict

from fedsim.aggregation import RoundHooks, available_strategies, create_strategy, get_strategy_entry
from fedsim.aggregation.legacy import create_legacy_strategy
from fedsim.aggregation.registry import STRATEGIES


@pytest.fixture(autouse=True)
def task_identity(monkeypatch):
    """Flower stamps messages with the process's task identity, which run_simulation sets."""
    from flwr.supercore.task_identity import TaskIdentity

    for name in ("_run_id", "_task_id", "_node_id"):
        monkeypatch.setattr(TaskIdentity, name, 1)


def reply(value: float, examples: int, partition_id: int, *, skipped: bool = False) -> Message:
    ask = Message(
        content=RecordDict({"config": ConfigRecord({"server-round": 1})}),
        dst_node_id=partition_id + 1,
        message_type=MessageType.TRAIN,
    )
    content = RecordDict(
        {
            "arrays": ArrayRecord([np.full(3, value, dtype=np.float32)]),
            "metrics": MetricRecord(
                {
                    "num-examples": examples,
                    "weight": examples,
                    "partition-id": partition_id,
                    "train-loss": value,
                    "skipped": int(skipped),
                }
            ),
        }
    )
    return Message(content=content, reply_to=ask)


@pytest.mark.parametrize("name", ["fedavg", "fedavgm"])  # a plain weighted mean with default options
def test_weighted_average_and_reply_hook(name):
    # Arrange
    seen = []
    strategy = create_strategy(
        name, num_clients=2, fraction_train=1.0, on_train_replies=lambda r, e: seen.extend(r)
    )
    initial = ArrayRecord([np.zeros(3, dtype=np.float32)])
    strategy.configure_train(1, initial, ConfigRecord(), grid=_Grid())
    # Act
    arrays, metrics = strategy.aggregate_train(1, [reply(1.0, 10, 0), reply(4.0, 30, 1)])
    # Assert: (1*10 + 4*30) / 40 = 3.25, with FedAvgM's defaults (no server momentum) too
    assert np.allclose(arrays.to_numpy_ndarrays()[0], 3.25)
    assert [(r.partition_id, r.metrics["num-examples"]) for r in seen] == [(0, 10), (1, 30)]
    assert metrics["train-loss"] == pytest.approx(3.25)


class _Grid:
    """The two Grid calls FedAvg's configure_train makes."""

    def get_node_ids(self):
        return [1, 2]

    def create_message(self, content, message_type, dst_node_id, group_id, ttl=None):
        return Message(content=content, dst_node_id=dst_node_id, message_type=message_type, group_id=group_id)


def test_skipped_clients_are_reported_but_not_aggregated():
    # Arrange: client 2's budget is spent; it replies with the unchanged global arrays
    seen = []
    strategy = create_strategy(
        "fedavg", num_clients=2, fraction_train=1.0, on_train_replies=lambda r, e: seen.extend(r)
    )
    # Act
    arrays, _ = strategy.aggregate_train(
        1, [reply(1.0, 10, 0), reply(4.0, 30, 1), reply(0.0, 0, 2, skipped=True)]
    )
    # Assert: the skipped reply reaches the ledger hook but not the average
    assert np.allclose(arrays.to_numpy_ndarrays()[0], 3.25)
    assert [r.partition_id for r in seen] == [0, 1, 2]


def test_all_skipped_keeps_the_global_model():
    strategy = create_strategy(
        "fedavg", num_clients=1, fraction_train=1.0, on_train_replies=lambda r, e: None
    )
    assert strategy.aggregate_train(1, [reply(0.0, 0, 0, skipped=True)]) == (None, None)


def test_configure_round_entries_reach_the_clients():
    strategy = create_strategy(
        "fedavg",
        num_clients=2,
        fraction_train=1.0,
        on_train_replies=lambda r, e: None,
        configure_round=lambda server_round: {"blocked-clients": [1]},
    )
    messages = list(strategy.configure_train(3, ArrayRecord([np.zeros(3)]), ConfigRecord(), grid=_Grid()))
    assert [list(m.content["config"]["blocked-clients"]) for m in messages] == [[1], [1]]
    assert all(m.content["config"]["server-round"] == 3 for m in messages)


def test_hooks_sit_outside_a_dp_wrapper_so_failed_and_skipped_replies_do_not_reach_it():
    from fedsim.aggregation.user_dp import wrap_user_level
    from tests.fixtures.specs import user_level_dp

    # Arrange: user-level DP without noise (z tiny) around FedAvg, 4 sampled clients
    seen, errors, releases = [], [], []
    user = user_level_dp(noise_multiplier=1e-9, clipping_norm=100.0)
    strategy = create_strategy(
        "fedavg",
        num_clients=2,
        fraction_train=1.0,
        on_train_replies=lambda r, e: (seen.extend(r), errors.extend(e)),
        wrap=lambda s: wrap_user_level(s, user, noise_multiplier=1e-9, num_sampled_clients=4),
        on_release=lambda server_round, n: releases.append((server_round, n)),
    )
    strategy.configure_train(1, ArrayRecord([np.zeros(3, dtype=np.float32)]), ConfigRecord(), grid=_Grid())
    failed = Message(
        content=RecordDict({"config": ConfigRecord({"server-round": 1})}),
        dst_node_id=9,
        message_type=MessageType.TRAIN,
    )
    failed = Message(Error(code=0, reason="client crashed"), reply_to=failed)
    # Act: two trained replies, one skipped (unchanged weights: a zero update), one failure
    arrays, _ = strategy.aggregate_train(
        1, [reply(1.0, 1, 0), reply(3.0, 1, 1), reply(0.0, 0, 2, skipped=True), failed]
    )
    # Assert: everything reported; only the two trained updates averaged (Flower's wrapper would drop a
    # round with a failure, and its clipping divides by a zero update's norm); one release of 2 updates
    assert [r.partition_id for r in seen] == [0, 1, 2] and [e.reason for e in errors] == ["client crashed"]
    assert np.allclose(arrays.to_numpy_ndarrays()[0], 2.0, atol=1e-6)
    assert releases == [(1, 2)]


def test_seeded_cohorts_sort_replies_and_name_failed_clients():
    # Arrange: 4 clients on nodes 11..14, 3 per round; client 2's reply is an error, one sends none
    from fedsim.aggregation import Cohorts
    from fedsim.aggregation.cohorts import sample_cohort
    from fedsim.aggregation.replies import TIMEOUT_REASON

    cohorts = Cohorts(node_ids=(11, 12, 13, 14), size=3, seed=7)
    seen, failures = [], []
    strategy = create_strategy(
        "fedavg",
        num_clients=4,
        fraction_train=0.75,
        on_train_replies=lambda r, f: (seen.extend(r), failures.extend(f)),
        cohorts=cohorts,
        round_offset=2,
    )
    grid = _Grid()
    grid.get_node_ids = lambda: [11, 12, 13, 14]
    # Act
    messages = strategy.configure_train(1, ArrayRecord([np.zeros(3, dtype=np.float32)]), ConfigRecord(), grid)
    cohort = sample_cohort(7, 3, 4, 3)  # round 1 after an offset of 2 is round 3
    asks = {m.metadata.dst_node_id - 11: m for m in messages}
    first, second, third = cohort

    def answer(pid, value):
        content = RecordDict(
            {
                "arrays": ArrayRecord([np.full(3, value, dtype=np.float32)]),
                "metrics": MetricRecord(
                    {"num-examples": 1, "weight": 1, "partition-id": pid, "train-loss": 0.0}
                ),
            }
        )
        return Message(content=content, reply_to=asks[pid])

    error = Message(Error(code=0, reason="boom"), reply_to=asks[second])
    arrays, _ = strategy.aggregate_train(1, [answer(first, 2.0), error])  # `third` never answers
    # Assert
    assert sorted(asks) == cohort and all(m.content["config"]["server-round"] == 3 for m in messages)
    assert [r.partition_id for r in seen] == [first] and seen[0].server_round == 3
    assert [(f.partition_id, f.reason) for f in failures] == [(second, "boom"), (third, TIMEOUT_REASON)]
    assert np.allclose(arrays.to_numpy_ndarrays()[0], 2.0)


def test_cohort_sampling_is_seeded_uniform_and_without_replacement():
    from fedsim.aggregation.cohorts import sample_cohort

    draws = [sample_cohort(0, r, 10, 3) for r in range(1, 2001)]
    assert all(len(set(d)) == 3 and d == sorted(d) for d in draws)
    assert draws == [sample_cohort(0, r, 10, 3) for r in range(1, 2001)]
    assert draws != [sample_cohort(1, r, 10, 3) for r in range(1, 2001)]
    counts = np.bincount(np.concatenate(draws), minlength=10)
    assert np.all(np.abs(counts - 600) < 4 * np.sqrt(600 * 0.3 * 0.7))  # each client in 30 % of rounds


def test_fedavgm_state_round_trips_through_state_dict():
    # Arrange: two rounds of FedAvgM build a momentum vector
    def run(strategy, rounds):
        arrays = ArrayRecord([np.zeros(3, dtype=np.float32)])
        for r in rounds:
            strategy.configure_train(r, arrays, ConfigRecord(), grid=_Grid())
            arrays, _ = strategy.aggregate_train(r, [reply(float(r), 10, 0), reply(2.0 * r, 10, 1)])
        return arrays

    options = {"server_learning_rate": 1.0, "server_momentum": 0.5}
    whole = create_strategy(
        "fedavgm", num_clients=2, fraction_train=1.0, on_train_replies=lambda r, e: None, options=options
    )
    first = create_strategy(
        "fedavgm", num_clients=2, fraction_train=1.0, on_train_replies=lambda r, e: None, options=options
    )
    # Act: the same rounds, with the state carried to a fresh strategy after round 1
    expected = run(whole, [1, 2])
    middle = run(first, [1])
    resumed = create_strategy(
        "fedavgm", num_clients=2, fraction_train=1.0, on_train_replies=lambda r, e: None, options=options
    )
    resumed.load_state_dict(first.state_dict())
    resumed.strategy.current_arrays = middle
    resumed.configure_train(2, middle, ConfigRecord(), grid=_Grid())
    got, _ = resumed.aggregate_train(2, [reply(2.0, 10, 0), reply(4.0, 10, 1)])
    # Assert
    assert first.state_dict()["strategy"]["momentum_vector"] is not None
    assert np.allclose(got.to_numpy_ndarrays()[0], expected.to_numpy_ndarrays()[0])


# --- registry contract: every StrategyEntry ------------------------------------------------------

STATEFUL_OPTIONS = {"server_momentum": 0.5, "proximal_mu": 0.1, "beta": 0.25}
"""Option values that give a strategy server state to keep, or that a scenario must set (others take the
scenario's defaults, and None means Flower's)."""


def _options(name: str) -> dict[str, float]:
    """The entry's options at the scenario's defaults, except those in :data:`STATEFUL_OPTIONS`."""
    from fedsim.scenario.sections import FederationSection

    fields = FederationSection.model_fields
    options = {o: STATEFUL_OPTIONS.get(o, fields[o].default) for o in get_strategy_entry(name).options}
    return {o: v for o, v in options.items() if v is not None}


def _hooks(name: str) -> RoundHooks:
    return create_strategy(
        name, num_clients=2, fraction_train=1.0, on_train_replies=lambda r, e: None, options=_options(name)
    )


def _train(strategy: RoundHooks, server_round: int, arrays: ArrayRecord) -> ArrayRecord:
    strategy.configure_train(server_round, arrays, ConfigRecord(), grid=_Grid())
    replies = [reply(float(server_round), 10, 0), reply(3.0 * server_round, 30, 1)]
    new_arrays, _ = strategy.aggregate_train(server_round, replies)
    return new_arrays


def _checkpointed(state: dict) -> dict:
    """``state`` through ``torch.save`` and ``torch.load(weights_only=True)``, as a checkpoint file."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def _assert_same(got, expected) -> None:
    """Equal values of equal types: tensors and arrays bit for bit, with their dtype and shape."""
    assert type(got) is type(expected)
    if isinstance(expected, torch.Tensor):
        assert got.dtype == expected.dtype and torch.equal(got, expected)
    elif isinstance(expected, np.ndarray):
        assert got.dtype == expected.dtype and np.array_equal(got, expected)
    elif isinstance(expected, list | tuple):
        assert len(got) == len(expected)
        for g, e in zip(got, expected, strict=True):
            _assert_same(g, e)
    elif isinstance(expected, dict):
        assert list(got) == list(expected)
        for key in expected:
            _assert_same(got[key], expected[key])
    else:
        assert got == expected


def test_registry_names_are_the_available_strategies():
    assert sorted(STRATEGIES) == available_strategies()


@pytest.mark.parametrize("name", available_strategies())
def test_message_api_class_builds_with_its_options(name):
    # Arrange
    entry = get_strategy_entry(name)
    # Act
    strategy = _hooks(name)
    # Assert: the Flower class itself, configured by its constructor
    assert type(strategy.strategy) is entry.message_api
    for option, value in _options(name).items():
        assert getattr(strategy.strategy, option) == value


@pytest.mark.parametrize("name", available_strategies())
def test_server_state_attributes_exist_after_one_round(name):
    # Arrange
    strategy = _hooks(name)
    # Act
    _train(strategy, 1, ArrayRecord([np.zeros(3, dtype=np.float32)]))
    # Assert
    for attribute in get_strategy_entry(name).server_state:
        assert hasattr(strategy.strategy, attribute), f"{name} has no server state {attribute!r}"
    assert set(strategy.state_dict()["strategy"]) == set(get_strategy_entry(name).server_state)


@pytest.mark.parametrize("name", available_strategies())
def test_state_dict_survives_a_weights_only_checkpoint_and_resumes_exactly(name):
    # Arrange: two rounds in one go, and the same two rounds with a checkpoint in between
    whole = _hooks(name)
    expected = _train(whole, 2, _train(whole, 1, ArrayRecord([np.zeros(3, dtype=np.float32)])))
    first = _hooks(name)
    middle = _train(first, 1, ArrayRecord([np.zeros(3, dtype=np.float32)]))
    state = first.state_dict()
    # Act
    loaded = _checkpointed(state)
    resumed = _hooks(name)
    resumed.load_state_dict(loaded)
    # Assert: the file holds the saved state, and the fresh strategy holds the first one's (as NumPy again)
    _assert_same(loaded, state)
    _assert_same(resumed.state_dict(), state)
    for attribute in get_strategy_entry(name).server_state:
        _assert_same(getattr(resumed.strategy, attribute), getattr(first.strategy, attribute))
    # Act / Assert: its round 2 is bit-identical to the uninterrupted run's
    got = _train(resumed, 2, middle)
    _assert_same(got.to_numpy_ndarrays(), expected.to_numpy_ndarrays())


def test_state_dict_of_another_strategy_is_refused():
    # Arrange
    state = {"strategy": {"momentum_vector": None}, "clipping": {}}
    # Act / Assert
    with pytest.raises(ValueError, match="momentum_vector"):
        _hooks("fedavg").load_state_dict(state)


def _legacy(name: str):
    return create_legacy_strategy(
        name,
        num_clients=3,
        fraction_train=1.0,
        initial_arrays=ArrayRecord({"w": torch.zeros(3)}),
        on_train_replies=lambda r, e: None,
        evaluate_fn=lambda server_round, arrays: MetricRecord({"loss": 0.0}),
        **_options(name),
    )


@pytest.mark.parametrize("name", [n for n in available_strategies() if get_strategy_entry(n).legacy])
def test_legacy_class_builds(name):
    # Act
    strategy = _legacy(name)
    # Assert: a subclass of the entry's legacy class, the same one every time
    assert isinstance(strategy, get_strategy_entry(name).legacy)
    assert type(strategy) is type(_legacy(name))
    assert type(strategy).__name__ == get_strategy_entry(name).legacy.__name__
