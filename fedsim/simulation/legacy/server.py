"""The legacy ServerApp of the SecAgg+ path: Flower's ``SecAggPlusWorkflow`` around a hooked legacy strategy.

Flower 1.42 implements SecAgg+ (Bell et al. 2020, https://eprint.iacr.org/2020/704)
only in its legacy API (``SecAggPlusWorkflow`` in a ``DefaultWorkflow`` on a
``LegacyContext``), so this path runs the same server bookkeeping (the
session) as the Message-API path through a legacy strategy
(:func:`fedsim.aggregation.legacy.create_legacy_strategy`).

A round that yields no aggregate without telling the session (SecAgg+ halts
when fewer than ``reconstruction_threshold`` neighbours answer; Flower's DP
wrapper drops any round with a failed client) is reported to the session as a
round with one failed client (:data:`NO_AGGREGATE_REASON`), instead of passing
silently with the old model.

The server sees only the sum, but with user-level DP it adds the noise after
unmasking, so it sees the un-noised mean (central DP, trusted server). Flower's
noise std assumes a uniform average over the cohort: every client then counts
once (its ``weight`` is 1), and a skipped client (weight 0) is left out, as on
the Message-API path; the session accounts the round with the noise it really had.
"""

from __future__ import annotations

from collections.abc import Callable

from flwr.app import ArrayRecord, Context
from flwr.server import LegacyContext, ServerConfig
from flwr.server.strategy import DifferentialPrivacyClientSideFixedClipping
from flwr.server.workflow import DefaultWorkflow
from flwr.serverapp import Grid, ServerApp

from fedsim.aggregation import FailedClient
from fedsim.aggregation.legacy import create_legacy_strategy
from fedsim.privacy.accounting import RunStopped
from fedsim.simulation.legacy.settings import SecAggSettings, largest_weight
from fedsim.simulation.session import RunSession
from fedsim.simulation.spec import RunSpec

NO_AGGREGATE_REASON = "SecAgg+ round produced no aggregate (see Flower's log)"
"""The failure reported for a round that ended without an aggregate and without telling the session."""


def run_secagg(
    grid: Grid,
    context: Context,
    *,
    spec: RunSpec,
    session: RunSession,
    initial_arrays: ArrayRecord,
    secagg: SecAggSettings | None = None,
    user_dp: tuple[float, float] | None = None,
) -> None:
    """Run every round of a scenario with SecAgg+ aggregation (a ServerApp's ``main``).

    Pipeline:

    1. check that the federation suits SecAgg+ (:func:`_check_federation`);
    2. create the registry's legacy strategy with the session's hooks, sampling
       the cohort; with ``user_dp``, wrap it in Flower's client-side fixed clipping
       (noise std ``noise_multiplier * clipping_norm / cohort``; :func:`_create_strategy`);
    3. run Flower's ``DefaultWorkflow`` with ``SecAggPlusWorkflow`` as its fit step
       (:func:`_create_fit_step`): per round the four SecAgg+ stages (setup, share
       keys, collect masked vectors where clients train, unmask), then evaluation;
    4. end quietly when the session raises :class:`RunStopped` before a round
       (a round without an aggregate: see the module's docstring).

    Args:
        grid: the ServerApp's grid.
        context: the ServerApp's context.
        spec: the run's :class:`~fedsim.simulation.spec.RunSpec`.
        session: the run's session (``configure_round``, ``on_train_replies``,
            ``on_release``, ``attach_user_dp``, ``evaluate``).
        initial_arrays: the initial global model.
        secagg: protocol parameters (default :class:`SecAggSettings`).
        user_dp: ``(noise_multiplier, clipping_norm)`` for user-level DP with
            client-side clipping (noise std over clipping norm ≥ 0; L2 norm of a
            client's model update > 0), or None. The clients must be built with
            the same ``user_dp``.

    Raises:
        ValueError: if fewer than 2 clients are sampled per round (SecAgg+ needs 2),
            or if the scenario asks for user-level DP and ``user_dp`` is None.
    """
    settings = secagg or SecAggSettings()
    _check_federation(spec, user_dp=user_dp)  # 1
    reports = _CountedReplies(session)
    strategy = _create_strategy(  # 2
        spec, session=session, initial_arrays=initial_arrays, user_dp=user_dp, on_train_replies=reports
    )
    secagg_step = settings.create_workflow(max_weight=largest_weight(spec, uniform=user_dp is not None))
    workflow = DefaultWorkflow(fit_workflow=_create_fit_step(secagg_step, reports=reports))  # 3
    config = ServerConfig(num_rounds=spec.federation.rounds)
    legacy_context = LegacyContext(context, config=config, strategy=strategy)
    try:
        workflow(grid, legacy_context)
    except RunStopped:  # 4
        pass  # the session holds the reason; the run ends after its last full round


def _check_federation(spec: RunSpec, *, user_dp: tuple[float, float] | None) -> None:
    """Refuse a federation SecAgg+ cannot run, or user-level DP without its parameters.

    Args:
        spec: the run's :class:`~fedsim.simulation.spec.RunSpec`.
        user_dp: as given to :func:`run_secagg`.

    Raises:
        ValueError: as :func:`run_secagg` says.
    """
    cohort = spec.federation.cohort_size
    if cohort < 2:
        raise ValueError(f"SecAgg+ needs at least 2 clients per round; this federation samples {cohort}")
    if user_dp is None and spec.privacy.is_user_level:
        raise ValueError(
            "the scenario asks for user-level DP: pass user_dp=(noise_multiplier, clipping_norm)"
        )


class _CountedReplies:
    """The session's ``on_train_replies``, counting the rounds it was called for."""

    def __init__(self, session) -> None:
        self.session = session
        self.rounds = 0

    def __call__(self, replies: list, failed: list) -> None:
        self.rounds += 1
        self.session.on_train_replies(replies, failed)


def _create_strategy(
    spec: RunSpec,
    *,
    session: RunSession,
    initial_arrays: ArrayRecord,
    user_dp: tuple[float, float] | None,
    on_train_replies: Callable[[list, list], None],
):
    """The legacy strategy with the session's hooks, DP-wrapped under ``user_dp``.

    Args:
        spec: the run's :class:`~fedsim.simulation.spec.RunSpec`.
        session: the run's session (it is shown the DP wrapper, which it accounts by).
        initial_arrays: the initial global model.
        user_dp: ``(noise_multiplier, clipping_norm)``, or None (as in :func:`run_secagg`).
        on_train_replies: receives each round's replies and failures.

    Returns:
        The legacy Flower strategy the workflow runs.
    """
    fed = spec.federation
    strategy = create_legacy_strategy(
        fed.strategy,
        num_clients=fed.num_clients,
        fraction_train=fed.fraction_train,
        initial_arrays=initial_arrays,
        on_train_replies=on_train_replies,
        configure_round=session.configure_round,
        evaluate_fn=session.evaluate,
        on_release=session.on_release,
        **fed.options,
    )
    if user_dp is None:
        return strategy
    noise_multiplier, clipping_norm = user_dp
    wrapper = DifferentialPrivacyClientSideFixedClipping(
        strategy,
        noise_multiplier=noise_multiplier,
        clipping_norm=clipping_norm,
        num_sampled_clients=fed.cohort_size,
    )
    session.attach_user_dp(wrapper)  # accounts each round's release
    return wrapper


def _create_fit_step(secagg_step, *, reports: _CountedReplies) -> Callable[[Grid, Context], None]:
    """The workflow's fit step: one SecAgg+ round, reported as failed if it told the session nothing.

    Args:
        secagg_step: Flower's ``SecAggPlusWorkflow``.
        reports: the reply hook the strategy calls (counts the rounds reported).

    Returns:
        A ``(grid, context)`` workflow step.
    """

    def fit_step(step_grid: Grid, step_context: Context) -> None:
        before = reports.rounds
        secagg_step(step_grid, step_context)
        if reports.rounds == before:  # halted, or dropped by the DP wrapper
            reports.session.on_train_replies([], [FailedClient(None, NO_AGGREGATE_REASON)])

    return fit_step


def create_secagg_server_app(
    spec: RunSpec,
    *,
    session: RunSession,
    initial_arrays: ArrayRecord,
    secagg: SecAggSettings | None = None,
    user_dp: tuple[float, float] | None = None,
) -> ServerApp:
    """A ServerApp whose ``main`` is :func:`run_secagg`.

    Args:
        spec: as for :func:`run_secagg`.
        session: as for :func:`run_secagg`.
        initial_arrays: as for :func:`run_secagg`.
        secagg: as for :func:`run_secagg`.
        user_dp: as for :func:`run_secagg`.

    Returns:
        The ServerApp.
    """
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        run_secagg(
            grid,
            context,
            spec=spec,
            session=session,
            initial_arrays=initial_arrays,
            secagg=secagg,
            user_dp=user_dp,
        )

    return app
