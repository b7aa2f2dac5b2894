"""Legacy Flower strategies (``flwr.server.strategy``) with fedsim's hooks, for legacy workflows.

Flower 1.42 offers some server workflows, SecAgg+ among them, only in its legacy
API: a ``flwr.server.strategy.Strategy`` run by ``DefaultWorkflow`` on a
``LegacyContext``. The strategies here are the registry entries' ``legacy``
classes (Flower's legacy FedAvg, McMahan et al. 2017,
https://arxiv.org/abs/1602.05629, and FedAvgM, Hsu et al. 2019,
https://arxiv.org/abs/1909.06335) with the same three hooks as
:class:`fedsim.aggregation.RoundHooks`: extra train-config entries per round, every
client reply handed to a callback before aggregation (replies of weight 0,
from skipped clients, are reported but not averaged), and central evaluation
on named arrays.

Legacy messages carry the model as an unnamed list of arrays and a config of
scalars only, so the array names and any list-valued config entry travel as one
JSON string (:data:`LIST_ENTRIES_KEY`); clients restore them with
:func:`decode_fit_config`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import cache

import numpy as np
from flwr.app import Array, ArrayRecord, MetricRecord
from flwr.common import Parameters, Scalar, ndarrays_to_parameters, parameters_to_ndarrays

from fedsim.aggregation.registry import available_strategies, get_strategy_entry
from fedsim.aggregation.replies import (
    ClientReply,
    FailedClient,
    ReleaseCallback,
    ReplyCallback,
    RoundConfigCallback,
    is_aggregated,
)

EvaluateFn = Callable[[int, ArrayRecord], MetricRecord]
"""Central evaluation: ``(server_round, global arrays) -> metrics`` (round 0: the initial model)."""

SERVER_ROUND_KEY = "server-round"
"""Fit-config key: the round (from 1), as the Message-API strategies send it."""

ARRAY_KEYS_KEY = "array-keys"
"""Decoded fit-config key: the names of the arrays, in the order of the fit parameters."""

LIST_ENTRIES_KEY = "fedsim-lists"
"""Fit-config key: JSON object holding the list-valued entries (legacy configs take scalars only)."""


def encode_fit_config(config: Mapping) -> dict[str, Scalar]:
    """Move list-valued entries of a fit config into one JSON string (legacy configs take scalars only).

    Example:
        >>> encode_fit_config({"server-round": 2, "blocked-clients": [3, 7]})
        {'server-round': 2, 'fedsim-lists': '{"blocked-clients": [3, 7]}'}
    """
    scalars = {k: v for k, v in config.items() if not isinstance(v, list | tuple)}
    lists = {k: list(v) for k, v in config.items() if isinstance(v, list | tuple)}
    return {**scalars, LIST_ENTRIES_KEY: json.dumps(lists)} if lists else scalars


def decode_fit_config(config: Mapping) -> dict:
    """Inverse of :func:`encode_fit_config` (a client's view of the config).

    Example:
        >>> decode_fit_config({"server-round": 2, "fedsim-lists": '{"blocked-clients": [3, 7]}'})
        {'server-round': 2, 'blocked-clients': [3, 7]}
    """
    out = {k: v for k, v in config.items() if k != LIST_ENTRIES_KEY}
    out.update(json.loads(str(config.get(LIST_ENTRIES_KEY, "{}"))))
    return out


def _failure_reason(failure) -> str:
    """The reason of one legacy failure: an exception, or a ``(proxy, FitRes)`` with a bad status."""
    if isinstance(failure, BaseException):
        return str(failure)
    return str(failure[1].status.message)


class _LegacyHooks:
    """fedsim's config, reply and evaluation hooks, mixed in before a legacy Flower strategy class."""

    def __init__(
        self,
        *,
        initial_arrays: ArrayRecord,
        on_train_replies: ReplyCallback,
        evaluate_fn: EvaluateFn,
        configure_round: RoundConfigCallback,
        on_release: ReleaseCallback | None = None,
        **kwargs,
    ) -> None:
        initial = initial_arrays.to_numpy_ndarrays()
        self._keys = list(initial_arrays.keys())
        self._dtypes = [a.dtype for a in initial]
        super().__init__(
            initial_parameters=ndarrays_to_parameters(initial),
            on_fit_config_fn=lambda server_round: encode_fit_config(
                {
                    SERVER_ROUND_KEY: server_round,
                    ARRAY_KEYS_KEY: self._keys,
                    **configure_round(server_round),  # called before sampling; may end the run
                }
            ),
            **kwargs,
        )
        self._on_train_replies = on_train_replies
        self._evaluate_fn = evaluate_fn
        self._on_release = on_release

    def configure_fit(self, server_round: int, parameters: Parameters, client_manager):
        """The inner strategy's, once every registered client is available.

        Flower's legacy ``FedAvg.configure_fit`` sizes the cohort from the clients
        available at that moment and only then waits for ``min_available_clients``:
        under load a node that registers a moment late shrank the cohort (a SecAgg+
        round with 2 of 3 clients in CI).
        """
        client_manager.wait_for(self.min_available_clients)
        return super().configure_fit(server_round, parameters, client_manager)

    def aggregate_fit(self, server_round: int, results: list, failures: list):
        """Report every reply and failure, then average the replies that trained (None if none did)."""
        replies = [
            ClientReply(server_round, int(r.metrics["partition-id"]), dict(r.metrics)) for _, r in results
        ]
        self._on_train_replies(replies, [FailedClient(None, _failure_reason(f)) for f in failures])
        trained = [(proxy, res) for proxy, res in results if is_aggregated(res.metrics)]
        if not trained:  # every reply has weight 0 (skipped clients): the global model stays
            return None, {}
        parameters, metrics = super().aggregate_fit(server_round, trained, failures)
        if parameters is None:
            return None, metrics
        if self._on_release is not None:  # a DP wrapper around this strategy noises what it returns
            self._on_release(server_round, len(trained))
        arrays = parameters_to_ndarrays(parameters)  # back to the model's dtypes (float64 after SecAgg+)
        cast = [np.asarray(a, dtype=d) for a, d in zip(arrays, self._dtypes, strict=True)]
        return ndarrays_to_parameters(cast), metrics

    def evaluate(self, server_round: int, parameters: Parameters) -> tuple[float, dict[str, Scalar]]:
        """Evaluate the global model centrally on its named arrays: ``(loss, metrics)``."""
        arrays = parameters_to_ndarrays(parameters)
        record = ArrayRecord(
            array_dict={k: Array(np.asarray(a)) for k, a in zip(self._keys, arrays, strict=True)}
        )
        metrics = dict(self._evaluate_fn(server_round, record))
        return float(metrics.get("loss", float("nan"))), metrics


@cache
def _with_legacy_hooks(base: type) -> type:
    """Subclass a legacy Flower strategy with fedsim's config, reply and evaluation hooks.

    Cached, so each legacy class has one hooked subclass (``isinstance`` holds across runs).

    Args:
        base: a legacy Flower strategy class (``flwr.server.strategy``).

    Returns:
        The hooked subclass (:class:`_LegacyHooks` before ``base``), named as ``base``.
    """
    return type(base.__name__, (_LegacyHooks, base), {"__module__": __name__, "__qualname__": base.__name__})


def legacy_strategies() -> list[str]:
    """Names of the registered strategies that have a legacy Flower class, sorted.

    Example:
        >>> {"fedavg", "fedavgm"} <= set(legacy_strategies())
        True
    """
    return [name for name in available_strategies() if get_strategy_entry(name).legacy is not None]


def get_legacy_class(name: str) -> type:
    """The legacy Flower class of strategy ``name`` (its registry entry's ``legacy``) with fedsim's hooks.

    Args:
        name: one of :func:`legacy_strategies`.

    Returns:
        A subclass of the entry's legacy class (the same one on every call).

    Raises:
        ValueError: for an unknown name, or a strategy without a legacy Flower class.

    Example:
        >>> get_legacy_class("fedavgm").__name__
        'FedAvgM'
    """
    legacy = get_strategy_entry(name).legacy
    if legacy is None:
        raise ValueError(
            f"strategy {name!r} has no legacy Flower class, which the SecAgg+ workflow needs; "
            f"choose one of {legacy_strategies()}"
        )
    return _with_legacy_hooks(legacy)


def create_legacy_strategy(
    name: str,
    *,
    num_clients: int,
    fraction_train: float,
    initial_arrays: ArrayRecord,
    on_train_replies: ReplyCallback,
    evaluate_fn: EvaluateFn,
    configure_round: RoundConfigCallback | None = None,
    on_release: ReleaseCallback | None = None,
    **options: float,
):
    """Create a legacy Flower strategy that trains ``fraction_train`` of ``num_clients`` per round.

    It samples ``max(int(num_clients * fraction_train), 1)`` clients, as the
    Message-API strategies do, and sends each the fit config ``server-round``,
    the array names and ``configure_round``'s entries (encoded with
    :func:`encode_fit_config`). Replies are averaged weighted by their
    ``FitRes.num_examples`` (the clients' ``weight`` metric). Client-side
    evaluation is off; the server evaluates with ``evaluate_fn``.

    Args:
        name: one of :func:`legacy_strategies`.
        num_clients: clients registered in the federation (≥ 1).
        fraction_train: share of clients sampled per round, in ``(0, 1]``.
        initial_arrays: the initial global model (named arrays; their order and
            dtypes are kept for every later round).
        on_train_replies: receives each round's replies (``FitRes.metrics`` with
            ``"partition-id"``) and failure reasons before aggregation.
        evaluate_fn: central evaluation, called for round 0 and after each round.
        configure_round: extra fit-config entries for a round (e.g. blocked
            clients); may raise to end the run.
        on_release: called with the round and the number of updates averaged
            whenever an aggregate is returned (user-level accounting).
        **options: strategy-specific arguments, e.g. FedAvgM's
            ``server_learning_rate`` and ``server_momentum``.

    Returns:
        An instance of :func:`get_legacy_class`'s class.

    Raises:
        ValueError: for an unknown name, or a strategy without a legacy Flower class.
    """
    return get_legacy_class(name)(
        initial_arrays=initial_arrays,
        on_train_replies=on_train_replies,
        evaluate_fn=evaluate_fn,
        configure_round=configure_round or (lambda server_round: {}),
        on_release=on_release,
        fraction_fit=fraction_train,
        fraction_evaluate=0.0,
        min_fit_clients=1,
        min_evaluate_clients=0,
        min_available_clients=num_clients,
        **options,
    )
