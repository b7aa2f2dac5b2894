"""fedsim's hooks around a Flower Message-API strategy: report every reply, then let Flower aggregate.

Aggregation itself is Flower's: FedAvg (McMahan et al. 2017,
https://arxiv.org/abs/1602.05629) averages the clients' arrays weighted by
their :data:`~fedsim.aggregation.replies.WEIGHT_KEY` metric; FedAvgM (Hsu et
al. 2019, https://arxiv.org/abs/1909.06335) takes that same weighted average
and applies it to the global model as a server SGD step with momentum.
:class:`RoundHooks` wraps them (and any DP wrapper around them): it hands every
client reply (its partition id and metrics, including the privacy event) to a
callback before aggregation, so the privacy ledger sees each client's round,
and it saves and restores the server's state for checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp.strategy import Strategy

from fedsim.aggregation.cohorts import NOISE_STREAM, Cohorts, OnlyNodes
from fedsim.aggregation.registry import StrategyEntry
from fedsim.aggregation.replies import (
    TIMEOUT_REASON,
    ClientReply,
    FailedClient,
    ReleaseCallback,
    ReplyCallback,
    RoundConfigCallback,
    UpdatesCallback,
    is_aggregated,
)

_CLIPPING_STATE = ("clipping_norm", "noise_clipping_norm")
"""DP-FedAvg wrapper attributes that change during a run (adaptive clipping's norm)."""


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
       the number of updates averaged (user-level accounting), and ``on_updates``
       the round's starting model, each trained client's weights and the release
       (the canary audit);
    4. rounds are numbered from ``round_offset + 1``, so a resumed run goes on
       with the round numbers (and seeds) of the run it continues; a round whose
       (Poisson-sampled) cohort is empty sends nothing, and with
       ``empty_release`` a round in which nobody trained still releases
       ``empty_release(arrays)`` (user-level DP's noise on the unchanged model);
    5. :meth:`state_dict` and :meth:`load_state_dict` keep the server state the
       registry entry names (``entry.server_state``) and the DP wrapper's
       clipping norms, for checkpoints.

    Args:
        strategy: the Flower strategy that samples and aggregates: an instance
            of ``entry.message_api``, perhaps wrapped (e.g. in a DP wrapper).
        entry: the strategy's registry entry (its ``server_state`` is checkpointed).
        on_train_replies: receives each round's valid replies and failed clients.
        configure_round: extra train-config entries per round.
        on_release: called after each released aggregate, or None.
        on_updates: called after each round's aggregation with what the server saw, or None.
        cohorts: seeded cohort sampling, or None for Flower's own sampling.
        noise_seed: seeds the server-side DP noise per round, or None (unseeded).
        round_offset: rounds already completed before this strategy starts (≥ 0).
        empty_release: the release of a round in which no client trained (given the
            round's global arrays), or None to keep the global model unreleased.

    Raises:
        TypeError: if no layer of ``strategy`` is an ``entry.message_api``.
    """

    def __init__(
        self,
        strategy: Strategy,
        *,
        entry: StrategyEntry,
        on_train_replies: ReplyCallback,
        configure_round: RoundConfigCallback | None = None,
        on_release: ReleaseCallback | None = None,
        on_updates: UpdatesCallback | None = None,
        cohorts: Cohorts | None = None,
        noise_seed: int | None = None,
        round_offset: int = 0,
        empty_release: Callable[[ArrayRecord], ArrayRecord] | None = None,
    ) -> None:
        super().__init__()
        self._empty_release = empty_release
        self.strategy = strategy
        self.entry = entry
        self._on_train_replies = on_train_replies
        self._configure_round = configure_round or (lambda server_round: {})
        self._on_release = on_release
        self._on_updates = on_updates
        self._round_arrays: ArrayRecord | None = None
        self.cohorts = cohorts
        self.noise_seed = noise_seed
        self.round_offset = round_offset
        self._partition_of = cohorts.partition_of if cohorts else {}
        self._sent: list[int] = []
        self._aggregator = next((s for s in self._layers() if isinstance(s, entry.message_api)), None)
        if self._aggregator is None:
            raise TypeError(f"{type(strategy).__name__} does not wrap a {entry.message_api.__name__}")

    def configure_train(self, server_round, arrays, config, grid):
        """Add the round's entries to the config, then let the inner strategy configure the cohort."""
        server_round += self.round_offset
        config = ConfigRecord({**dict(config), **self._configure_round(server_round)})
        self._round_arrays = arrays
        if self.cohorts is not None:
            grid = OnlyNodes(grid, self.cohorts.nodes(server_round))
            if not grid.get_node_ids():  # an empty Poisson cohort: nobody to ask
                self._sent = []
                return []
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
        if not trained and self._empty_release is None:  # the global model stays, nothing is released
            return None, None
        trained.sort(key=lambda pair: pair[0])
        if self.noise_seed is not None:
            np.random.seed(
                np.random.SeedSequence([self.noise_seed, server_round, NOISE_STREAM]).generate_state(4)
            )
        if not trained:  # nobody trained, yet the round releases (user-level DP under Poisson sampling)
            arrays = self._empty_release(self._round_arrays)
            if self._on_release is not None:
                self._on_release(server_round, 0)
            return arrays, None
        arrays, metrics = self.strategy.aggregate_train(server_round, [msg for _, msg in trained])
        if arrays is not None and self._on_release is not None:
            self._on_release(server_round, len(trained))
        if self._on_updates is not None:
            updates = {pid: msg.content["arrays"] for pid, msg in trained}
            self._on_updates(self._round_arrays, updates, arrays)
        return arrays, metrics

    def state_dict(self) -> dict:
        """The server's state for a checkpoint, which ``torch.load(weights_only=True)`` reads back.

        Returns:
            ``{"strategy": {attribute: value}, "clipping": {attribute: float}}``:
            under ``"strategy"`` every attribute ``entry.server_state`` names
            (e.g. FedAvgM's ``momentum_vector``), read from the wrapped Flower
            strategy, with each NumPy array as a CPU ``torch.Tensor`` (same dtype
            and shape) inside the same lists, tuples and dicts, and NumPy scalars as
            Python numbers; under ``"clipping"`` the DP wrapper's clipping norms
            (L2 norms; adaptive clipping's change every round), empty without one.
        """
        clipping = {}
        for layer in self._layers():
            clipping.update({a: float(getattr(layer, a)) for a in _CLIPPING_STATE if hasattr(layer, a)})
        strategy = {a: _to_checkpoint(getattr(self._aggregator, a)) for a in self.entry.server_state}
        return {"strategy": strategy, "clipping": clipping}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (the resumed run's server state).

        Args:
            state: :meth:`state_dict`'s value (perhaps through ``torch.save`` and
                ``torch.load``); its tensors become NumPy arrays again.

        Raises:
            ValueError: if ``state["strategy"]`` does not hold exactly the
                attributes ``entry.server_state`` names (another strategy's state).
        """
        if set(state["strategy"]) != set(self.entry.server_state):
            raise ValueError(
                f"the saved server state has {sorted(state['strategy'])}, but "
                f"{self.entry.message_api.__name__} keeps {sorted(self.entry.server_state)}"
            )
        for name, value in state["strategy"].items():
            setattr(self._aggregator, name, _from_checkpoint(value))
        for layer in self._layers():
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


def _to_checkpoint(value):
    """``value`` with every NumPy array as a tensor, in plain lists, tuples and dicts.

    Raises:
        TypeError: for a value ``torch.load(weights_only=True)`` could not read back.

    Example:
        >>> _to_checkpoint({"m": [np.ones(2, dtype=np.float32)], "n": np.float64(0.5), "v": None})
        {'m': [tensor([1., 1.])], 'n': 0.5, 'v': None}
    """
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())  # a copy: the strategy goes on updating its own arrays
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return (list if isinstance(value, list) else tuple)(_to_checkpoint(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_checkpoint(v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot checkpoint server state of type {type(value).__name__}")


def _from_checkpoint(value):
    """Inverse of :func:`_to_checkpoint`: every tensor back to a NumPy array of the same dtype.

    Example:
        >>> _from_checkpoint({"m": [torch.ones(2)], "n": 0.5})
        {'m': [array([1., 1.], dtype=float32)], 'n': 0.5}
    """
    if isinstance(value, torch.Tensor):
        return value.numpy()
    if isinstance(value, list | tuple):
        return (list if isinstance(value, list) else tuple)(_from_checkpoint(v) for v in value)
    if isinstance(value, dict):
        return {k: _from_checkpoint(v) for k, v in value.items()}
    return value
