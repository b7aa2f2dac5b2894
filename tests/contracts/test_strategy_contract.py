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
    assert [r.partition_id for r in seen] == [0, 1, 2] and errors == ["client crashed"]
    assert np.allclose(arrays.to_numpy_ndarrays()[0], 2.0, atol=1e-6)
    assert releases == [(1, 2)]
