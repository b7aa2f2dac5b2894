"""The strategy registry: one entry per server strategy fedsim offers, all of them Flower's.

Adding a strategy from Flower is one :class:`StrategyEntry` here plus its
scenario keys in :mod:`fedsim.scenario.sections` (its options, with their
defaults); the ServerApp, the SecAgg+ path, checkpoints and the scenario's
choice list all read this table.
"""

from __future__ import annotations

from dataclasses import dataclass

from flwr.server.strategy import FedAvg as LegacyFedAvg
from flwr.server.strategy import FedAvgM as LegacyFedAvgM
from flwr.serverapp.strategy import FedAvg, FedAvgM


@dataclass(frozen=True)
class StrategyEntry:
    """One server strategy.

    Attributes:
        message_api: Flower's Message-API strategy class (``flwr.serverapp.strategy``).
        legacy: Flower's legacy strategy class (``flwr.server.strategy``) that the
            SecAgg+ workflow runs instead, or None if there is none.
        options: the constructor arguments a scenario may set (snake_case; the
            scenario keys are their kebab-case forms in ``[federation]``).
        server_state: attributes of the strategy object that change during a run
            and that a checkpoint must keep to resume it exactly (e.g. FedAvgM's
            ``momentum_vector``; FedAdam's would be ``m_t`` and ``v_t``): NumPy
            arrays in lists or dicts, numbers, or None. :class:`fedsim.aggregation.RoundHooks`
            saves them as tensors and restores them as NumPy arrays.
        user_level_dp: whether Flower's DP-FedAvg wrappers may wrap it: they noise
            the strategy's output, which must be a plain mean of clipped updates.
    """

    message_api: type
    legacy: type | None
    options: tuple[str, ...] = ()
    server_state: tuple[str, ...] = ()
    user_level_dp: bool = False


STRATEGIES: dict[str, StrategyEntry] = {
    # McMahan et al. 2017, https://arxiv.org/abs/1602.05629
    "fedavg": StrategyEntry(FedAvg, LegacyFedAvg, user_level_dp=True),
    # Hsu et al. 2019, https://arxiv.org/abs/1909.06335
    "fedavgm": StrategyEntry(
        FedAvgM,
        LegacyFedAvgM,
        options=("server_learning_rate", "server_momentum"),
        server_state=("momentum_vector",),
    ),
}


def available_strategies() -> list[str]:
    """Names of the registered strategies, sorted.

    Example:
        >>> {"fedavg", "fedavgm"} <= set(available_strategies())
        True
    """
    return sorted(STRATEGIES)


def get_strategy_entry(name: str) -> StrategyEntry:
    """The registry entry of strategy ``name``.

    Raises:
        ValueError: for an unknown name; the message lists the choices.
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose one of {available_strategies()}")
    return STRATEGIES[name]
