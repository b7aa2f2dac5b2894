"""Contract of every registered strategy: example-weighted FedAvg aggregate, replies reach the hook."""

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Error, Message, MessageType, MetricRecord, RecordDict

from fedsim.aggregation import available_strategies, create_strategy


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


@pytest.mark.parametrize("name", available_strategies())
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
    from fedsim.privacy import UserLevelDP

    # Arrange: user-level DP without noise (z tiny) around FedAvg, 4 sampled clients
    seen, errors, releases = [], [], []
    user = UserLevelDP(noise_multiplier=1e-9, clipping_norm=100.0)
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
    from fedsim.aggregation.strategies import TIMEOUT_REASON, sample_cohort

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
    from fedsim.aggregation.strategies import sample_cohort

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
        "fedavgm", num_clients=2, fraction_train=1.0, on_train_replies=lambda r, e: None, **options
    )
    first = create_strategy(
        "fedavgm", num_clients=2, fraction_train=1.0, on_train_replies=lambda r, e: None, **options
    )
    # Act: the same rounds, with the state carried to a fresh strategy after round 1
    expected = run(whole, [1, 2])
    middle = run(first, [1])
    resumed = create_strategy(
        "fedavgm", num_clients=2, fraction_train=1.0, on_train_replies=lambda r, e: None, **options
    )
    resumed.load_state_dict(first.state_dict())
    resumed.strategy.current_arrays = middle
    resumed.configure_train(2, middle, ConfigRecord(), grid=_Grid())
    got, _ = resumed.aggregate_train(2, [reply(2.0, 10, 0), reply(4.0, 10, 1)])
    # Assert
    assert first.state_dict()["momentum"] is not None
    assert np.allclose(got.to_numpy_ndarrays()[0], expected.to_numpy_ndarrays()[0])
