"""Flower Message-API strategies, chosen by name, that report each client's reply.

Aggregation itself is Flower's: FedAvg (McMahan et al. 2017,
https://arxiv.org/abs/1602.05629) averages the clients' arrays weighted by
their ``"num-examples"``; FedAvgM (Hsu et al. 2019,
https://arxiv.org/abs/1909.06335) takes that same weighted average and applies
it to the global model as a server SGD step with momentum. fedsim only adds a hook that hands every valid
client reply (its partition id and metrics, including the privacy event) to a
callback before aggregation, so the privacy ledger sees each client's round.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp.strategy import FedAvg, FedAvgM


@dataclass(frozen=True)
class ClientReply:
    """One client's training reply in one round.

    Attributes:
        server_round: the round (from 1).
        partition_id: the client's partition id.
        metrics: the reply's metric record as a plain dict (includes
            ``"num-examples"``).
    """

    server_round: int
    partition_id: int
    metrics: dict[str, float]


ReplyCallback = Callable[[list[ClientReply], list[str]], None]
"""Called with the round's valid replies and the error reasons of failed ones."""

RoundConfigCallback = Callable[[int], dict]
"""Called with the round number before clients are sampled; returns extra train-config entries."""

WEIGHT_KEY = "weight"
"""Reply metric FedAvg weights by: ``num-examples``, 1 under user-level DP, 0 for a skipped client."""


def is_skipped(metrics) -> bool:
    """Whether a reply comes from a client that did not train (privacy budget spent)."""
    return bool(int(metrics.get("skipped", 0)))


def _with_reply_hook(base: type) -> type:
    """Subclass a Flower strategy so ``aggregate_train`` reports replies first."""

    class Hooked(base):  # type: ignore[misc, valid-type]
        def __init__(
            self,
            *,
            on_train_replies: ReplyCallback,
            configure_round: RoundConfigCallback = lambda server_round: {},
            **kwargs,
        ) -> None:
            super().__init__(weighted_by_key=WEIGHT_KEY, **kwargs)
            self._on_train_replies = on_train_replies
            self._configure_round = configure_round

        def configure_train(self, server_round, arrays, config, grid):
            config = ConfigRecord({**dict(config), **self._configure_round(server_round)})
            return super().configure_train(server_round, arrays, config, grid)

        def aggregate_train(
            self, server_round: int, replies: Iterable[Message]
        ) -> tuple[ArrayRecord | None, MetricRecord | None]:
            replies = list(replies)
            valid, errors, trained = [], [], []
            for msg in replies:
                if msg.has_error():
                    errors.append(msg.error.reason)
                    continue
                metrics = dict(msg.content["metrics"])
                valid.append(ClientReply(server_round, int(metrics["partition-id"]), metrics))
                if float(metrics.get(WEIGHT_KEY, 1)) > 0:
                    trained.append(msg)
            self._on_train_replies(valid, errors)
            if not trained:  # every reply has weight 0 (skipped clients): the global model stays
                return None, None
            return super().aggregate_train(server_round, trained)

    Hooked.__name__ = Hooked.__qualname__ = base.__name__
    return Hooked


_STRATEGIES: dict[str, type] = {
    "fedavg": _with_reply_hook(FedAvg),
    "fedavgm": _with_reply_hook(FedAvgM),
}


def available_strategies() -> list[str]:
    """Names accepted by :func:`create_strategy`."""
    return sorted(_STRATEGIES)


def create_strategy(
    name: str,
    *,
    num_clients: int,
    fraction_train: float,
    on_train_replies: ReplyCallback,
    configure_round: RoundConfigCallback | None = None,
    **options: float,
):
    """Create a Flower strategy that trains ``fraction_train`` of ``num_clients`` per round.

    Client-side evaluation is off (``fraction_evaluate=0``): the server
    evaluates the global model on the held-out test set instead.

    Args:
        name: one of :func:`available_strategies`.
        num_clients: clients registered in the federation (≥ 1).
        fraction_train: share of clients sampled per round, in ``(0, 1]``; at
            least one client is always sampled.
        on_train_replies: receives each round's replies before aggregation.
        configure_round: returns extra train-config entries for a round (e.g. the
            clients whose privacy budget is spent); may raise to end the run.
        **options: strategy-specific constructor arguments, e.g. FedAvgM's
            ``server_learning_rate`` and ``server_momentum``.

    Raises:
        ValueError: for an unknown name.
    """
    if name not in _STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose one of {available_strategies()}")
    return _STRATEGIES[name](
        on_train_replies=on_train_replies,
        **({"configure_round": configure_round} if configure_round else {}),
        fraction_train=fraction_train,
        fraction_evaluate=0.0,
        min_train_nodes=1,
        min_evaluate_nodes=0,
        min_available_nodes=num_clients,
        **options,
    )
