"""RoundHooks' server state: any registry entry's attributes, checkpoint-ready, and the legacy classes."""

import io

import numpy as np
import pytest
import torch
from flwr.serverapp.strategy import FedAdam, FedAvg

from fedsim.aggregation import RoundHooks, StrategyEntry
from fedsim.aggregation.legacy import create_legacy_strategy, get_legacy_class
from fedsim.aggregation.registry import STRATEGIES


def _fedadam_hooks() -> RoundHooks:
    entry = StrategyEntry(FedAdam, None, server_state=("m_t", "v_t"))
    return RoundHooks(FedAdam(), entry=entry, on_train_replies=lambda r, f: None)


def test_dict_valued_server_state_round_trips_through_a_weights_only_checkpoint():
    # Arrange: FedAdam's moments are dicts of NumPy arrays; an entry naming them needs no code in RoundHooks
    hooks = _fedadam_hooks()
    hooks.strategy.m_t = {"w": np.arange(4, dtype=np.float32).reshape(2, 2), "b": np.ones(1)}
    hooks.strategy.v_t = None
    buffer = io.BytesIO()
    # Act
    torch.save(hooks.state_dict(), buffer)
    buffer.seek(0)
    fresh = _fedadam_hooks()
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    # Assert
    assert fresh.strategy.v_t is None and list(fresh.strategy.m_t) == ["w", "b"]
    for key, value in hooks.strategy.m_t.items():
        restored = fresh.strategy.m_t[key]
        assert isinstance(restored, np.ndarray) and restored.dtype == value.dtype
        assert np.array_equal(restored, value)


def test_state_dict_copies_the_arrays():
    # Arrange
    hooks = _fedadam_hooks()
    hooks.strategy.m_t = {"w": np.zeros(2, dtype=np.float32)}
    # Act
    state = hooks.state_dict()
    hooks.strategy.m_t["w"] += 1  # the strategy goes on updating its arrays in place
    # Assert
    assert torch.equal(state["strategy"]["m_t"]["w"], torch.zeros(2))


def test_hooks_refuse_a_strategy_of_another_entry():
    entry = StrategyEntry(FedAdam, None, server_state=("m_t", "v_t"))
    with pytest.raises(TypeError, match="FedAdam"):
        RoundHooks(FedAvg(), entry=entry, on_train_replies=lambda r, f: None)


def test_legacy_class_of_a_strategy_without_one_is_a_clear_error(monkeypatch):
    # Arrange: an entry with no legacy Flower class
    monkeypatch.setitem(STRATEGIES, "fedadam", StrategyEntry(FedAdam, None))
    # Act / Assert
    with pytest.raises(ValueError, match="'fedadam' has no legacy Flower class"):
        get_legacy_class("fedadam")
    with pytest.raises(ValueError, match="unknown strategy"):
        create_legacy_strategy(
            "nope",
            num_clients=1,
            fraction_train=1.0,
            initial_arrays=None,
            on_train_replies=lambda r, f: None,
            evaluate_fn=lambda r, a: None,
        )
