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


def reply(value: float, examples: int, partition_id: int) -> Message:
    ask = Message(
        content=RecordDict({"config": ConfigRecord({"server-round": 1})}),
        dst_node_id=partition_id + 1,
        message_type=MessageType.TRAIN,
    )
    content = RecordDict(
        {
            "arrays": ArrayRecord([np.full(3, value, dtype=np.float32)]),
            "metrics": MetricRecord(
                {"num-examples": examples, "partition-id": partition_id, "train-loss": value}
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

    def create_message(self, *args, **kwargs):  # pragma: no cover - unused by FedAvg
        raise NotImplementedError
