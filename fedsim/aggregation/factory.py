"""Create a run's server strategy by name: Flower's strategy from the registry, inside fedsim's hooks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flwr.serverapp.strategy import Strategy

from fedsim.aggregation.cohorts import Cohorts
from fedsim.aggregation.hooks import RoundHooks
from fedsim.aggregation.registry import StrategyEntry, get_strategy_entry
from fedsim.aggregation.replies import WEIGHT_KEY, ReplyCallback


def create_strategy(
    name: str,
    *,
    num_clients: int,
    fraction_train: float,
    on_train_replies: ReplyCallback,
    wrap: Callable[[Strategy], Strategy] | None = None,
    options: Mapping[str, float] | None = None,
    cohorts: Cohorts | None = None,
    **hooks: Any,
) -> RoundHooks:
    """Create a Flower strategy that trains ``fraction_train`` of ``num_clients`` per round.

    The strategy averages the replies weighted by their ``"weight"`` metric (examples; 1 under
    user-level DP). Client-side evaluation is off (``fraction_evaluate=0``): the server evaluates
    the global model on the held-out test set instead.

    Args:
        name: one of :func:`fedsim.aggregation.available_strategies`.
        num_clients: clients registered in the federation (≥ 1).
        fraction_train: share of clients sampled per round, in ``(0, 1]``; at
            least one client is always sampled.
        on_train_replies: as for :class:`RoundHooks` (each round's replies, before aggregation).
        wrap: wraps the Flower strategy (e.g. in a DP-FedAvg wrapper); the hooks stay outermost.
        options: strategy-specific constructor arguments (the registry entry's
            ``options``), e.g. FedAvgM's ``server_learning_rate`` and ``server_momentum``.
        cohorts: as for :class:`RoundHooks`; the inner strategy then trains every node it is shown.
        **hooks: the other keyword arguments of :class:`RoundHooks` (``configure_round``,
            ``on_release``, ``on_updates``, ``noise_seed``, ``round_offset``, ``empty_release``).

    Returns:
        A :class:`RoundHooks` whose ``strategy`` is the (wrapped) Flower strategy.

    Raises:
        ValueError: for an unknown name.

    Example:
        >>> hooks = create_strategy("fedavg", num_clients=2, fraction_train=1.0, on_train_replies=print)
        >>> type(hooks.strategy).__name__, hooks.state_dict()
        ('FedAvg', {'strategy': {}, 'clipping': {}})
    """
    entry = get_strategy_entry(name)
    seeded = bool(cohorts)
    strategy = _inner_strategy(entry, num_clients, fraction_train, seeded=seeded, options=options or {})
    return RoundHooks(
        wrap(strategy) if wrap else strategy,
        entry=entry,
        on_train_replies=on_train_replies,
        cohorts=cohorts,
        **hooks,
    )


def _inner_strategy(
    entry: StrategyEntry, num_clients: int, fraction_train: float, *, seeded: bool, options: Mapping
) -> Strategy:
    """The entry's Message-API strategy; with seeded cohorts it trains every node it is shown."""
    return entry.message_api(
        fraction_train=1.0 if seeded else fraction_train,
        fraction_evaluate=0.0,
        min_train_nodes=1,
        min_evaluate_nodes=0,
        min_available_nodes=1 if seeded else num_clients,
        weighted_by_key=WEIGHT_KEY,
        **options,
    )
