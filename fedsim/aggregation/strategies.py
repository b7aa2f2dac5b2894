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

import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
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


@dataclass(frozen=True)
class FailedClient:
    """A sampled client whose training request failed in a round.

    Attributes:
        partition_id: the client's partition id (None if its node is unknown).
        reason: Flower's error reason, or that no reply came within the round timeout.
    """

    partition_id: int | None
    reason: str


ReplyCallback = Callable[[list[ClientReply], list[FailedClient]], None]
"""Called with the round's valid replies (by partition id) and its failed clients."""

TIMEOUT_REASON = "no reply within federation.round-timeout"


def sample_cohort(seed: int, server_round: int, num_clients: int, size: int) -> list[int]:
    """The partition ids trained in ``server_round``: ``size`` of ``num_clients``, without replacement.

    Uniform sampling of a fixed-size cohort (as Flower's ``sample_nodes``), but
    drawn from a NumPy generator seeded by ``(seed, server_round)``, so a run is
    reproducible and a resumed run samples what the uninterrupted one would.

    Args:
        seed: the run's seed.
        server_round: the round, from 1.
        num_clients: registered clients (partition ids ``0 .. num_clients - 1``).
        size: clients per round (the cohort).

    Returns:
        Sorted partition ids, length ``min(size, num_clients)``.

    Example:
        >>> sample_cohort(0, 1, 10, 3) == sample_cohort(0, 1, 10, 3)
        True
        >>> len(sample_cohort(0, 1, 10, 3)), sample_cohort(0, 1, 4, 9)
        (3, [0, 1, 2, 3])
    """
    size = min(size, num_clients)
    if size == num_clients:
        return list(range(num_clients))
    rng = np.random.default_rng(np.random.SeedSequence([seed, server_round, _COHORT_STREAM]))
    return sorted(int(p) for p in rng.choice(num_clients, size=size, replace=False))


_COHORT_STREAM = 0x636F686F  # separates the cohort's random stream from the server noise's
_NOISE_STREAM = 0x6E6F6973


@dataclass(frozen=True)
class Cohorts:
    """Seeded cohort sampling over the federation's registered Flower nodes.

    Attributes:
        node_ids: the Flower node id of each partition id (index = partition id).
        size: clients per round (the cohort).
        seed: the run's seed, or None to draw cohorts from the operating system's
            secure generator (``secrets.SystemRandom``: under Opacus's secure
            mode, user-level ε relies on the cohort being secret, and the seed is not).
    """

    node_ids: tuple[int, ...]
    size: int
    seed: int | None

    @cached_property
    def partition_of(self) -> dict[int, int]:
        """The partition id of each node id (the inverse of :attr:`node_ids`)."""
        return {node: pid for pid, node in enumerate(self.node_ids)}

    def nodes(self, server_round: int) -> list[int]:
        """The node ids of the round's cohort (``server_round`` from 1), by partition id."""
        n = len(self.node_ids)
        if self.seed is None:
            pids = sorted(secrets.SystemRandom().sample(range(n), min(self.size, n)))
        else:
            pids = sample_cohort(self.seed, server_round, n, self.size)
        return [self.node_ids[p] for p in pids]


class _OnlyNodes:
    """A view of a Flower ``Grid`` whose connected nodes are just the round's cohort."""

    def __init__(self, grid, node_ids: Sequence[int]) -> None:
        self._grid, self._node_ids = grid, list(node_ids)

    def get_node_ids(self) -> list[int]:
        return list(self._node_ids)

    def __getattr__(self, name: str):
        return getattr(self._grid, name)


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
       clients whose budget is spent) to the train config; the callback may
       raise to end the run. With ``cohorts``, the inner strategy then sees only
       the round's seeded cohort as connected nodes (and trains all of them);
       without, it samples as Flower does (unseeded);
    2. ``aggregate_train`` hands every reply, and every sampled client that
       failed or did not reply in time, to ``on_train_replies`` (the privacy
       ledger), then passes on only the replies that trained, sorted by
       partition id (a fixed summation order): no failed reply reaches Flower's
       DP wrappers (which would drop the whole round) and no skipped client's
       unchanged weights reach their clipping (which divides by the update's
       norm). With ``noise_seed``, NumPy's global generator, which Flower's
       DP-FedAvg wrappers draw their noise from, is seeded per round first;
    3. when the inner strategy releases a new global model, ``on_release`` gets
       the number of updates averaged (user-level accounting);
    4. rounds are numbered from ``round_offset + 1``, so a resumed run goes on
       with the round numbers (and seeds) of the run it continues.

    Args:
        strategy: the Flower strategy that samples and aggregates.
        on_train_replies: receives each round's valid replies and failed clients.
        configure_round: extra train-config entries per round.
        on_release: called after each released aggregate, or None.
        cohorts: seeded cohort sampling, or None for Flower's own sampling.
        noise_seed: seeds the server-side DP noise per round, or None (unseeded).
        round_offset: rounds already completed before this strategy starts.
    """

    def __init__(
        self,
        strategy: Strategy,
        *,
        on_train_replies: ReplyCallback,
        configure_round: RoundConfigCallback | None = None,
        on_release: ReleaseCallback | None = None,
        cohorts: Cohorts | None = None,
        noise_seed: int | None = None,
        round_offset: int = 0,
    ) -> None:
        super().__init__()
        self.strategy = strategy
        self._on_train_replies = on_train_replies
        self._configure_round = configure_round or (lambda server_round: {})
        self._on_release = on_release
        self.cohorts = cohorts
        self.noise_seed = noise_seed
        self.round_offset = round_offset
        self._partition_of = cohorts.partition_of if cohorts else {}
        self._sent: list[int] = []

    def configure_train(self, server_round, arrays, config, grid):
        """Add the round's entries to the config, then let the inner strategy configure the cohort."""
        server_round += self.round_offset
        config = ConfigRecord({**dict(config), **self._configure_round(server_round)})
        if self.cohorts is not None:
            grid = _OnlyNodes(grid, self.cohorts.nodes(server_round))
        messages = list(self.strategy.configure_train(server_round, arrays, config, grid))
        self._sent = [m.metadata.dst_node_id for m in messages]
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Report every reply and every failed client, then aggregate those that trained."""
        server_round += self.round_offset
        valid, failed, trained, answered = [], [], [], set()
        for msg in replies:
            node = msg.metadata.src_node_id
            answered.add(node)
            if msg.has_error():
                failed.append(FailedClient(self._partition_of.get(node), msg.error.reason))
                continue
            metrics = dict(msg.content["metrics"])
            pid = int(metrics["partition-id"])
            if self._partition_of and self._partition_of.get(node) != pid:
                raise RuntimeError(
                    f"node {node} answered as client {pid}, not {self._partition_of.get(node)}"
                )
            valid.append(ClientReply(server_round, pid, metrics))
            if is_aggregated(metrics):
                trained.append((pid, msg))
        failed += [
            FailedClient(self._partition_of.get(n), TIMEOUT_REASON) for n in self._sent if n not in answered
        ]
        valid.sort(key=lambda reply: reply.partition_id)
        failed.sort(key=lambda f: (f.partition_id is None, f.partition_id or 0))
        self._on_train_replies(valid, failed)
        if not trained:  # every sampled client was skipped: the global model stays, nothing is released
            return None, None
        trained.sort(key=lambda pair: pair[0])
        if self.noise_seed is not None:
            np.random.seed(
                np.random.SeedSequence([self.noise_seed, server_round, _NOISE_STREAM]).generate_state(4)
            )
        arrays, metrics = self.strategy.aggregate_train(server_round, [msg for _, msg in trained])
        if arrays is not None and self._on_release is not None:
            self._on_release(server_round, len(trained))
        return arrays, metrics

    def state_dict(self) -> dict:
        """The server optimiser's state, for a checkpoint: FedAvgM's momentum, adaptive clipping's norm.

        Returns:
            ``{"momentum": [np.ndarray, ...] or None, "clipping": {attribute: float}}``.
        """
        clipping, momentum = {}, None
        for layer in self._layers():
            momentum = getattr(layer, "momentum_vector", momentum)
            clipping.update({a: float(getattr(layer, a)) for a in _CLIPPING_STATE if hasattr(layer, a)})
        return {"momentum": momentum, "clipping": clipping}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (the resumed run's server optimiser)."""
        for layer in self._layers():
            if hasattr(layer, "momentum_vector"):
                layer.momentum_vector = state["momentum"]
            for name, value in state["clipping"].items():
                if hasattr(layer, name):
                    setattr(layer, name, value)

    def _layers(self) -> list:
        """The wrapped strategies, outermost first (DP wrapper, then FedAvg/FedAvgM)."""
        layers, layer = [], self.strategy
        while layer is not None:
            layers.append(layer)
            layer = getattr(layer, "strategy", None)
        return layers

    def configure_evaluate(self, server_round, arrays, config, grid):
        """The inner strategy's (client-side evaluation is off)."""
        return self.strategy.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(self, server_round, replies):
        """The inner strategy's."""
        return self.strategy.aggregate_evaluate(server_round, replies)

    def summary(self) -> None:
        """The inner strategy's."""
        self.strategy.summary()


_CLIPPING_STATE = ("clipping_norm", "noise_clipping_norm")
"""DP-FedAvg wrapper attributes that change during a run (adaptive clipping's norm)."""

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
    cohorts: Cohorts | None = None,
    noise_seed: int | None = None,
    round_offset: int = 0,
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
        cohorts: seeded cohort sampling (the inner strategy then trains every
            node it is shown), or None for Flower's unseeded sampling.
        noise_seed: seeds the server-side DP noise per round, or None.
        round_offset: rounds completed before this strategy starts (resume).
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
        fraction_train=1.0 if cohorts else fraction_train,
        fraction_evaluate=0.0,
        min_train_nodes=1,
        min_evaluate_nodes=0,
        min_available_nodes=1 if cohorts else num_clients,
        weighted_by_key=WEIGHT_KEY,
        **options,
    )
    return RoundHooks(
        wrap(strategy) if wrap else strategy,
        on_train_replies=on_train_replies,
        configure_round=configure_round,
        on_release=on_release,
        cohorts=cohorts,
        noise_seed=noise_seed,
        round_offset=round_offset,
    )
