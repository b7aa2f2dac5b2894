"""The strategy registry: one entry per server strategy fedsim offers, all of them Flower's.

Adding a strategy from Flower is one :class:`StrategyEntry` here plus its
scenario keys in :mod:`fedsim.scenario.sections` (its options, with their
defaults); the ServerApp, the SecAgg+ path, checkpoints and the scenario's
choice list all read this table.
"""

from __future__ import annotations

from dataclasses import dataclass

from flwr.server import strategy as flwr_legacy
from flwr.serverapp.strategy import (
    FedAdagrad,
    FedAdam,
    FedAvg,
    FedAvgM,
    FedMedian,
    FedProx,
    FedTrimmedAvg,
    FedYogi,
    Krum,
)


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
        required: options a scenario must set (Flower's default would make the
            strategy another one, e.g. FedProx with ``proximal_mu = 0`` is FedAvg).
        robust: whether it aggregates by order statistics or distances between
            the updates (median, trimmed mean, Krum) rather than by a weighted mean.
    """

    message_api: type
    legacy: type | None
    options: tuple[str, ...] = ()
    server_state: tuple[str, ...] = ()
    user_level_dp: bool = False
    required: tuple[str, ...] = ()
    robust: bool = False


_FEDOPT_STATE = ("m_t", "v_t")
"""FedOpt's moment estimates (``current_arrays`` is set from the global model every round)."""

STRATEGIES: dict[str, StrategyEntry] = {
    # McMahan et al. 2017, https://arxiv.org/abs/1602.05629
    "fedavg": StrategyEntry(FedAvg, flwr_legacy.FedAvg, user_level_dp=True),
    # Hsu et al. 2019, https://arxiv.org/abs/1909.06335
    "fedavgm": StrategyEntry(
        FedAvgM,
        flwr_legacy.FedAvgM,
        options=("server_learning_rate", "server_momentum"),
        server_state=("momentum_vector",),
    ),
    # Li et al. 2020, https://arxiv.org/abs/1812.06127: FedAvg on the server; Flower sends
    # "proximal-mu" and each client adds mu * (w - w_global) to its gradient.
    "fedprox": StrategyEntry(
        FedProx, flwr_legacy.FedProx, options=("proximal_mu",), user_level_dp=True, required=("proximal_mu",)
    ),
    # Reddi et al. 2021, "Adaptive Federated Optimization", https://arxiv.org/abs/2003.00295
    "fedadam": StrategyEntry(
        FedAdam, flwr_legacy.FedAdam, options=("eta", "beta_1", "beta_2", "tau"), server_state=_FEDOPT_STATE
    ),
    "fedyogi": StrategyEntry(
        FedYogi, flwr_legacy.FedYogi, options=("eta", "beta_1", "beta_2", "tau"), server_state=_FEDOPT_STATE
    ),
    "fedadagrad": StrategyEntry(
        FedAdagrad, flwr_legacy.FedAdagrad, options=("eta", "tau"), server_state=_FEDOPT_STATE
    ),
    # Yin et al. 2018, https://arxiv.org/abs/1803.01498 (coordinate-wise median and trimmed mean)
    "fedmedian": StrategyEntry(FedMedian, None, robust=True),
    "fedtrimmedavg": StrategyEntry(FedTrimmedAvg, None, options=("beta",), robust=True),
    # Blanchard et al. 2017, "Machine Learning with Adversaries: Byzantine Tolerant Gradient
    # Descent" (NeurIPS 2017)
    "krum": StrategyEntry(Krum, None, options=("num_malicious_nodes",), robust=True),
}


def available_strategies() -> list[str]:
    """Names of the registered strategies, sorted.

    Example:
        >>> {"fedavg", "fedavgm", "fedprox", "fedadam", "krum"} <= set(available_strategies())
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
