"""Contract of every registered strategy: example-weighted FedAvg aggregate, replies reach the hook."""

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict

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
