"""Flower Message-API strategies, chosen by name, that report each client's reply.

Aggregation itself is Flower's: FedAvg (McMahan et al. 2017,
https://arxiv.org/abs/1602.05629) averages the clients' arrays weighted by
their ``"num-examples"``; FedAvgM (Hsu et al. 2019,
https://arxiv.org/abs/1909.06335) takes that same weighted average and applies
it to the global model as a server SGD step with momentum. fedsim only adds
:class:`RoundHooks` around them (and around any DP wrapper): it hands every
client reply (its partition id and metrics, including the privacy event) to a
callback before aggregation, so the privacy ledger sees each client's round.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp.strategy import FedAvg, FedAvgM, Strategy


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


ReleaseCallback = Callable[[int, int], None]
"""Called with the round and the number of updates averaged, whenever a new global model is released."""


def is_skipped(metrics) -> bool:
    """Whether a reply comes from a client that did not train (privacy budget spent)."""
    return bool(int(metrics.get("skipped", 0)))


def is_aggregated(metrics) -> bool:
    """Whether a reply's arrays enter the average: it trained and has a positive ``weight``."""
    return not is_skipped(metrics) and float(metrics.get(WEIGHT_KEY, 1)) > 0


class RoundHooks(Strategy):
    """The outermost strategy of a run: fedsim's hooks around a Flower strategy (perhaps DP-wrapped).

    1. ``configure_train`` adds ``configure_round(server_round)``'s entries (the
       clients whose budget is spent) to the train config before the inner
       strategy samples the cohort; the callback may raise to end the run;
    2. ``aggregate_train`` hands every reply, failed ones included, to
       ``on_train_replies`` (the privacy ledger), then passes on only the replies
       that trained: no failed reply reaches Flower's DP wrappers (which would
       drop the whole round) and no skipped client's unchanged weights reach
       their clipping (which divides by the update's norm);
    3. when the inner strategy releases a new global model, ``on_release`` gets
       the number of updates averaged (user-level accounting).

    Args:
        strategy: the Flower strategy that samples and aggregates.
        on_train_replies: receives each round's valid replies and error reasons.
        configure_round: extra train-config entries per round.
        on_release: called after each released aggregate, or None.
    """

    def __init__(
        self,
        strategy: Strategy,
        *,
        on_train_replies: ReplyCallback,
        configure_round: RoundConfigCallback | None = None,
        on_release: ReleaseCallback | None = None,
    ) -> None:
        super().__init__()
        self.strategy = strategy
        self._on_train_replies = on_train_replies
        self._configure_round = configure_round or (lambda server_round: {})
        self._on_release = on_release

    def configure_train(self, server_round, arrays, config, grid):
        """Add the round's entries to the config, then let the inner strategy sample and configure."""
        config = ConfigRecord({**dict(config), **self._configure_round(server_round)})
        return self.strategy.configure_train(server_round, arrays, config, grid)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Report every reply, then aggregate those that trained."""
        valid, errors, trained = [], [], []
        for msg in replies:
            if msg.has_error():
                errors.append(msg.error.reason)
                continue
            metrics = dict(msg.content["metrics"])
            valid.append(ClientReply(server_round, int(metrics["partition-id"]), metrics))
            if is_aggregated(metrics):
                trained.append(msg)
        self._on_train_replies(valid, errors)
        if not trained:  # every sampled client was skipped: the global model stays, nothing is released
            return None, None
        arrays, metrics = self.strategy.aggregate_train(server_round, trained)
        if arrays is not None and self._on_release is not None:
            self._on_release(server_round, len(trained))
        return arrays, metrics

    def configure_evaluate(self, server_round, arrays, config, grid):
        """The inner strategy's (client-side evaluation is off)."""
        return self.strategy.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(self, server_round, replies):
        """The inner strategy's."""
        return self.strategy.aggregate_evaluate(server_round, replies)

    def summary(self) -> None:
        """The inner strategy's."""
        self.strategy.summary()


_STRATEGIES: dict[str, type] = {"fedavg": FedAvg, "fedavgm": FedAvgM}


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
    wrap: Callable[[Strategy], Strategy] | None = None,
    on_release: ReleaseCallback | None = None,
    **options: float,
) -> RoundHooks:
    """Create a Flower strategy that trains ``fraction_train`` of ``num_clients`` per round.

    The strategy averages the replies weighted by their ``"weight"`` metric
    (examples; 1 under user-level DP). Client-side evaluation is off
    (``fraction_evaluate=0``): the server evaluates the global model on the
    held-out test set instead.

    Args:
        name: one of :func:`available_strategies`.
        num_clients: clients registered in the federation (≥ 1).
        fraction_train: share of clients sampled per round, in ``(0, 1]``; at
            least one client is always sampled.
        on_train_replies: receives each round's replies before aggregation.
        configure_round: returns extra train-config entries for a round (e.g. the
            clients whose privacy budget is spent); may raise to end the run.
        wrap: wraps the Flower strategy (e.g. in a DP-FedAvg wrapper); the hooks
            stay outermost.
        on_release: called with the round and the number of updates averaged
            after each released aggregate.
        **options: strategy-specific constructor arguments, e.g. FedAvgM's
            ``server_learning_rate`` and ``server_momentum``.

    Returns:
        A :class:`RoundHooks` whose ``strategy`` is the (wrapped) Flower strategy.

    Raises:
        ValueError: for an unknown name.
    """
    if name not in _STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose one of {available_strategies()}")
    strategy = _STRATEGIES[name](
        fraction_train=fraction_train,
        fraction_evaluate=0.0,
        min_train_nodes=1,
        min_evaluate_nodes=0,
        min_available_nodes=num_clients,
        weighted_by_key=WEIGHT_KEY,
        **options,
    )
    return RoundHooks(
        wrap(strategy) if wrap else strategy,
        on_train_replies=on_train_replies,
        configure_round=configure_round,
        on_release=on_release,
    )
