"""The Flower ServerApp: FedAvg over the sampled cohort, central evaluation each round."""

from __future__ import annotations

from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp

from fedsim.aggregation import create_strategy
from fedsim.aggregation.user_dp import wrap_user_level
from fedsim.privacy import cohort_size
from fedsim.simulation.recorder import RunRecorder, RunStopped


def create_server_app(
    specs, *, recorder: RunRecorder, initial_arrays: ArrayRecord, user_noise_multiplier: float | None = None
) -> ServerApp:
    """Build the ServerApp for a scenario.

    Pipeline of its ``main``:

    1. create the scenario's strategy (FedAvg by default), sampling
       ``fraction_train`` of the clients each round, asking ``recorder`` before
       each round which clients' budgets are spent (or whether the run stops),
       and handing their replies to ``recorder`` (privacy ledger) before
       aggregating them weighted by ``"weight"`` (examples; 1 under user-level DP);
    2. under user-level DP, wrap it in Flower's DP-FedAvg wrapper and show the
       wrapper to ``recorder``, which accounts each round's release;
    3. evaluate the initial model on the test set (round 0);
    4. for each round: send the global arrays to the cohort, aggregate, and
       evaluate the new global model on the test set (``recorder.evaluate``),
       until the last round or until ``recorder`` stops the run.

    Args:
        specs: :class:`fedsim.simulation.scenario.ScenarioSpecs`.
        recorder: collects replies, ε and per-round records; lives in the
            driver process (the ServerApp runs in a thread there).
        initial_arrays: the initial global model.
        user_noise_multiplier: DP-FedAvg's z (required under user-level DP).
    """
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        fed, user = specs.federation, specs.privacy.user_level
        wrap = None
        if user is not None:

            def wrap(strategy):
                wrapper = wrap_user_level(
                    strategy,
                    user,
                    noise_multiplier=user_noise_multiplier,
                    num_sampled_clients=cohort_size(fed.num_clients, fed.fraction_train),
                )
                recorder.attach_user_dp(wrapper)
                return wrapper

        strategy = create_strategy(
            fed.strategy,
            num_clients=fed.num_clients,
            fraction_train=fed.fraction_train,
            on_train_replies=recorder.on_train_replies,
            configure_round=recorder.configure_round,
            wrap=wrap,
            on_release=recorder.on_release,
            **fed.strategy_options(),
        )
        try:
            strategy.start(
                grid=grid,
                initial_arrays=initial_arrays,
                num_rounds=specs.federation.rounds,
                train_config=ConfigRecord({}),
                evaluate_fn=recorder.evaluate,
            )
        except RunStopped:
            pass  # the recorder holds the reason; the run ends after its last full round

    return app
