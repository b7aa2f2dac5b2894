"""The Flower ServerApp: FedAvg over the sampled cohort, central evaluation each round."""

from __future__ import annotations

from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp

from fedsim.aggregation import create_strategy
from fedsim.simulation.recorder import RunRecorder, RunStopped


def create_server_app(specs, *, recorder: RunRecorder, initial_arrays: ArrayRecord) -> ServerApp:
    """Build the ServerApp for a scenario.

    Pipeline of its ``main``:

    1. create the scenario's strategy (FedAvg by default), sampling
       ``fraction_train`` of the clients each round and handing their replies
       to ``recorder`` (privacy ledger) before aggregating them weighted by
       ``"num-examples"``;
    2. evaluate the initial model on the test set (round 0);
    3. for each round: send the global arrays to the cohort, aggregate, and
       evaluate the new global model on the test set (``recorder.evaluate``).

    Args:
        specs: :class:`fedsim.simulation.scenario.ScenarioSpecs`.
        recorder: collects replies, ε and per-round records; lives in the
            driver process (the ServerApp runs in a thread there).
        initial_arrays: the initial global model.
    """
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        strategy = create_strategy(
            specs.federation.strategy,
            num_clients=specs.federation.num_clients,
            fraction_train=specs.federation.fraction_train,
            on_train_replies=recorder.on_train_replies,
            configure_round=recorder.configure_round,
            **(
                {
                    "server_learning_rate": specs.federation.server_learning_rate,
                    "server_momentum": specs.federation.server_momentum,
                }
                if specs.federation.strategy == "fedavgm"
                else {}
            ),
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
