"""The Flower ServerApp: FedAvg over the sampled cohort, central evaluation each round."""

from __future__ import annotations

import time
from collections.abc import Callable

from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid, ServerApp

from fedsim.aggregation import Cohorts, RoundHooks, create_strategy
from fedsim.aggregation.user_dp import FixedDenominator, noise_only_release, wrap_user_level
from fedsim.privacy.accounting import RunStopped
from fedsim.simulation.session import RunSession
from fedsim.simulation.spec import RunSpec

STARTUP_TIMEOUT_S = 600.0
"""Seconds the first cohort may take to start (Ray actors, imports, data) before round 1."""

PULL_INTERVAL_S = 0.01
"""How often the simulation's in-memory grid looks for replies (Flower's default, 0.1 s, adds up
to 0.1 s to every round)."""


class NodeRegistryError(RuntimeError):
    """The server could not learn which Flower node holds which client."""


def discover_partitions(grid: Grid, num_clients: int, *, timeout_s: float = 600.0) -> tuple[int, ...]:
    """The Flower node id of every client, indexed by partition id.

    Flower's simulation gives nodes random ids and tells only each node its
    ``partition-id``. It registers node ``i`` as the ``i``-th node of its
    in-memory link state, so that state's node order is the mapping
    (:func:`_registration_order`), at no cost for any number of clients. Where
    that state is not available (another Flower version or engine), one
    ``query`` message per node, answered by the ClientApp, gives it instead.
    Either way every reply is checked against it (:class:`fedsim.aggregation.RoundHooks`).

    Args:
        grid: the ServerApp's Flower grid.
        num_clients: registered clients (partition ids ``0 .. num_clients - 1``).
        timeout_s: seconds to wait for the nodes and their answers.

    Returns:
        ``node_ids`` with ``node_ids[partition_id]`` the node holding that client.

    Raises:
        NodeRegistryError: if fewer than ``num_clients`` nodes connect, or any
            node's answer is missing or an error, within ``timeout_s`` seconds.
    """
    deadline = time.monotonic() + timeout_s
    while len(nodes := sorted(grid.get_node_ids())) < num_clients:
        if time.monotonic() > deadline:
            raise NodeRegistryError(f"only {len(nodes)} of {num_clients} clients connected")
        time.sleep(0.05)
    registered = _registration_order(grid, num_clients)
    if registered is not None:
        return registered
    node_ids = [0] * num_clients
    for node, partition_id in query_clients(grid, nodes, timeout_s=deadline - time.monotonic()).items():
        node_ids[partition_id] = node
    return tuple(node_ids)


def query_clients(grid: Grid, nodes: list[int], *, timeout_s: float) -> dict[int, int]:
    """Send each node a ``query`` message; its ClientApp loads its client's data and names its partition id.

    Run before round 1 for the first cohort, it starts the Ray actors and loads
    the data set in them, so that start-up is not counted against
    ``federation.round-timeout``.

    Args:
        grid: the ServerApp's Flower grid.
        nodes: node ids to query.
        timeout_s: seconds to wait for every answer.

    Returns:
        ``{node id: partition id}``.

    Raises:
        NodeRegistryError: if an answer is an error or missing.
    """
    queries = [Message(RecordDict(), dst_node_id=node, message_type=MessageType.QUERY) for node in nodes]
    replies = list(grid.send_and_receive(queries, timeout=max(1.0, timeout_s)))
    errors = [r.error.reason for r in replies if r.has_error()]
    if errors or len(replies) != len(nodes):
        reason = errors[0] if errors else f"{len(nodes) - len(replies)} client(s) did not answer"
        raise NodeRegistryError(f"the clients did not start: {reason}")
    return {r.metadata.src_node_id: int(r.content["metrics"]["partition-id"]) for r in replies}


def _registration_order(grid: Grid, num_clients: int) -> tuple[int, ...] | None:
    """Node ids in the order Flower 1.42's simulation registered them (partition 0 first), if readable.

    ``flwr.server.superlink.fleet.vce.vce_api._register_nodes`` creates node
    ``i`` for partition ``i`` in a loop, and the in-memory link state the
    simulation's grid reads keeps its ``nodes`` dict in insertion order.
    """
    nodes = getattr(getattr(grid, "state", None), "nodes", None)
    if not isinstance(nodes, dict) or len(nodes) != num_clients:
        return None
    return tuple(nodes)


def create_server_app(
    spec: RunSpec,
    *,
    session: RunSession,
    initial_arrays: ArrayRecord,
    user_noise_multiplier: float | None = None,
    round_offset: int = 0,
    resuming: bool = False,
) -> ServerApp:
    """Build the ServerApp for a scenario; its ``main`` runs in four steps.

    0. learn each client's node id (:func:`discover_partitions`), so that cohorts are
       sampled by partition id from ``(seed, round)``, and start the first cohort's
       clients, so that start-up does not count against the round timeout
       (:func:`_start_cohorts`);
    1. create the scenario's strategy inside the session's hooks (blocked clients,
       replies to the privacy ledger, aggregation weighted by ``"weight"``), wrapped
       under user-level DP in Flower's DP-FedAvg wrapper (:func:`_create_round_hooks`);
    2. evaluate the initial model (round 0; not when resuming: :func:`_create_evaluate_fn`);
    3. for each round: send the global arrays to the cohort, wait at most
       ``federation.round-timeout`` for the replies, aggregate and evaluate
       (``session.evaluate``), until the last round or until ``session`` stops the run.

    Args:
        spec: the run's :class:`~fedsim.simulation.spec.RunSpec`.
        session: the run's session (records, privacy, checkpoints), in the driver process.
        initial_arrays: the initial global model.
        user_noise_multiplier: DP-FedAvg's z (required under user-level DP).
        round_offset: rounds already completed (a resumed run starts at
            ``round_offset + 1`` from ``initial_arrays``, the checkpoint's model).
        resuming: whether this continues an interrupted run (its round 0 is not evaluated again).
    """
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        cohorts = _start_cohorts(grid, spec, round_offset=round_offset)  # 0
        strategy = _create_round_hooks(  # 1, 2
            spec,
            session=session,
            cohorts=cohorts,
            user_noise_multiplier=user_noise_multiplier,
            round_offset=round_offset,
        )
        evaluate = _create_evaluate_fn(session, round_offset=round_offset, resuming=resuming)
        try:
            strategy.start(  # 3, 4
                grid=grid,
                initial_arrays=initial_arrays,
                num_rounds=spec.federation.rounds - round_offset,
                timeout=spec.simulation.round_timeout,
                train_config=ConfigRecord({}),
                evaluate_fn=evaluate,
            )
        except RunStopped:
            pass  # the session holds the reason; the run ends after its last full round

    return app


def _start_cohorts(grid: Grid, spec: RunSpec, *, round_offset: int) -> Cohorts:
    """Learn each client's node, then start the first cohort's clients before the round clock runs.

    Sets the in-memory grid's reply polling to :data:`PULL_INTERVAL_S`, maps
    partition ids to node ids (:func:`discover_partitions`) and sends the
    first cohort a ``query`` (:func:`query_clients`), which starts their Ray
    actors and loads their data within :data:`STARTUP_TIMEOUT_S`.

    Args:
        grid: the ServerApp's Flower grid.
        spec: the run's :class:`~fedsim.simulation.spec.RunSpec`.
        round_offset: rounds already completed (the first cohort is round ``round_offset + 1``'s).

    Returns:
        The run's cohorts: seeded by ``spec.seed``, or by the OS's secure generator
        under Opacus's secure mode.

    Raises:
        NodeRegistryError: if the clients do not connect or start, or one
            answers with another partition id than its node's.
    """
    fed = spec.federation
    if hasattr(grid, "pull_interval"):
        grid.pull_interval = PULL_INTERVAL_S
    cohorts = Cohorts(
        node_ids=discover_partitions(grid, fed.num_clients),
        size=fed.cohort_size,
        seed=None if spec.dp_sgd.secure_mode else spec.seed,
        poisson_rate=fed.fraction_train if fed.cohort_sampling == "poisson" else None,
    )
    first = cohorts.nodes(round_offset + 1)  # start the actors and load the data before the clock runs
    answers = query_clients(grid, first, timeout_s=STARTUP_TIMEOUT_S)
    if any(answers[node] != cohorts.partition_of[node] for node in first):
        raise NodeRegistryError("a client answered with another partition id than its node's")
    return cohorts


def _create_round_hooks(
    spec: RunSpec,
    *,
    session: RunSession,
    cohorts: Cohorts,
    user_noise_multiplier: float | None,
    round_offset: int,
) -> RoundHooks:
    """The scenario's strategy inside fedsim's hooks, DP-wrapped under user-level DP, shown to ``session``.

    Args:
        spec: the run's :class:`~fedsim.simulation.spec.RunSpec`.
        session: the run's session (its hooks; it is shown the DP wrapper and the strategy).
        cohorts: from :func:`_start_cohorts`.
        user_noise_multiplier: DP-FedAvg's z (required under user-level DP).
        round_offset: rounds already completed.

    Returns:
        The outermost strategy, attached to ``session`` (which loads a resumed run's server state into it).
    """
    fed, user = spec.federation, spec.privacy.user_level
    wrap = empty_release = None
    if user is not None:
        poisson = fed.cohort_sampling == "poisson"
        wrappers = []

        def wrap(strategy):
            inner = FixedDenominator(strategy, fed.cohort_size) if poisson else strategy
            wrapper = wrap_user_level(
                inner,
                user,
                noise_multiplier=user_noise_multiplier,
                num_sampled_clients=fed.cohort_size,
            )
            session.attach_user_dp(wrapper)
            wrappers.append(wrapper)
            return wrapper

        if poisson:  # every round is a release, an empty cohort's too

            def empty_release(arrays):
                return noise_only_release(wrappers[0], arrays)

    strategy = create_strategy(
        fed.strategy,
        num_clients=fed.num_clients,
        fraction_train=fed.fraction_train,
        on_train_replies=session.on_train_replies,
        configure_round=session.configure_round,
        wrap=wrap,
        on_release=session.on_release,
        on_updates=session.on_updates if session.canaries is not None else None,
        cohorts=cohorts,
        noise_seed=None if spec.dp_sgd.secure_mode or user is None else spec.seed,
        round_offset=round_offset,
        empty_release=empty_release,
        options=fed.options,
    )
    session.attach_server(strategy)
    return strategy


def _create_evaluate_fn(
    session: RunSession, *, round_offset: int, resuming: bool
) -> Callable[[int, ArrayRecord], MetricRecord | None]:
    """Central evaluation for ``strategy.start``: the session's, at the run's round numbers.

    Args:
        session: evaluates the global model and records the round.
        round_offset: rounds already completed (added to Flower's round number).
        resuming: whether round 0 was evaluated before an interruption (it is
            then skipped, and the round clock starts instead).

    Returns:
        ``evaluate(server_round, arrays)``, Flower's ``evaluate_fn``.
    """

    def evaluate(server_round: int, arrays: ArrayRecord):
        if resuming and server_round == 0:  # evaluated before the interruption
            session.start_round_clock()  # the next round's time starts now, after start-up
            return None
        return session.evaluate(server_round + round_offset, arrays)

    return evaluate
