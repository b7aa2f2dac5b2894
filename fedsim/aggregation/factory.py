"""Create a run's server strategy by name: Flower's strategy from the registry, inside fedsim's hooks."""

from __future__ import annotations

from collections.abc import Callable

from flwr.serverapp.strategy import Strategy

from fedsim.aggregation.cohorts import Cohorts
from fedsim.aggregation.hooks import RoundHooks
from fedsim.aggregation.registry import StrategyEntry, get_strategy_entry
from fedsim.aggregation.replies import (
    WEIGHT_KEY,
    ReleaseCallback,
    ReplyCallback,
    RoundConfigCallback,
    UpdatesCallback,
)


def create_strategy(
    name: str,
    *,
    num_clients: int,
    fraction_train: float,
    on_train_replies: ReplyCallback,
    configure_round: RoundConfigCallback | None = None,
    wrap: Callable[[Strategy], Strategy] | None = None,
    on_release: ReleaseCallback | None = None,
    on_updates: UpdatesCallback | None = None,
    cohorts: Cohorts | None = None,
    noise_seed: int | None = None,
    round_offset: int = 0,
    **options: float,
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
        wrap: wraps the Flower strategy (e.g. in a DP-FedAvg wrapper); the hooks stay outermost.
        on_train_replies: as for :class:`RoundHooks` (each round's replies, before aggregation).
        configure_round: as for :class:`RoundHooks` (extra train-config entries; may raise to end the run).
        on_release: as for :class:`RoundHooks` (the round and the number of updates averaged).
        on_updates: as for :class:`RoundHooks` (the round's model, the clients' weights, the release).
        cohorts: as for :class:`RoundHooks`; the inner strategy then trains every node it is shown.
        noise_seed: as for :class:`RoundHooks` (seeds the server-side DP noise per round, or None).
        round_offset: as for :class:`RoundHooks` (rounds completed before this strategy starts; resume).
        **options: strategy-specific constructor arguments (the registry entry's
            ``options``), e.g. FedAvgM's ``server_learning_rate`` and ``server_momentum``.

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
    strategy = _inner_strategy(entry, num_clients, fraction_train, seeded=bool(cohorts), options=options)
    return RoundHooks(
        wrap(strategy) if wrap else strategy,
        entry=entry,
        on_train_replies=on_train_replies,
        configure_round=configure_round,
        on_release=on_release,
        on_updates=on_updates,
        cohorts=cohorts,
        noise_seed=noise_seed,
        round_offset=round_offset,
    )


def _inner_strategy(
    entry: StrategyEntry, num_clients: int, fraction_train: float, *, seeded: bool, options: dict
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
