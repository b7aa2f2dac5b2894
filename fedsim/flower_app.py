"""``flwr run .``: fedsim as a Flower App, with the same ServerApp, ClientApp, results and run folder.

``pyproject.toml`` names :data:`server_app` and :data:`client_app` as the app's
components. Flower then starts a local SuperLink in simulation mode, one SuperNode
per simulated client, and this module's ServerApp, which runs the scenario named
in the run config exactly as ``fedsim run`` does (:func:`fedsim.commands.execute.execute_run`),
on Flower's grid instead of a simulation it starts itself. Each SuperNode's
ClientApp rebuilds the run's client task from the same scenario
(:func:`fedsim.commands.run.rebuilt_client_task`) and answers with fedsim's
ClientApp (:func:`fedsim.simulation.client_app.create_client_app`).

Run config (``--run-config``; defaults in ``pyproject.toml``):

* ``scenario``: the scenario file (relative paths: to the app's folder);
* ``out``: the run folder (default ``reports/<scenario name>``, relative to the
  folder the SuperLink was started from; give an absolute path to be sure);
* ``overrides``: ``--set`` overrides, space-separated, e.g. ``"federation.rounds=2"``.

The federation must have one SuperNode per client
(``--federation-config "num-supernodes=N client-resources-num-cpus=C"``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from rich.console import Console

APP_DIR = Path(__file__).resolve().parents[1]
"""The app's folder (the project's, or Flower's installed copy of it): relative scenario paths start here."""

server_app = ServerApp()
client_app = ClientApp()


def _scenario(run_config) -> tuple[object, str]:
    """The run config's scenario (with its overrides) and its file name.

    Raises:
        fedsim.scenario.ScenarioError: as ``fedsim run`` would (missing file, bad key, a sweep).
    """
    from fedsim.scenario import ScenarioError, read_scenario_file, source_name, validate_scenario
    from fedsim.scenario.sweeps import is_sweep

    path = Path(str(run_config["scenario"]))
    path = path if path.is_absolute() else APP_DIR / path
    overrides = str(run_config.get("overrides", "")).split()
    raw = read_scenario_file(path, overrides)
    if is_sweep(raw):
        raise ScenarioError(f"{path}: a sweep; flwr run takes one scenario (run sweeps with fedsim run)")
    scenario = validate_scenario(raw, source=source_name(path, overrides))
    if scenario.privacy.secure_aggregation:
        raise ScenarioError(
            f"{path}: privacy.secure-aggregation runs Flower's legacy workflow, which fedsim starts "
            "only through fedsim run"
        )
    return scenario, path.name


@server_app.main()
def main(grid: Grid, context: Context) -> None:
    """Run the run config's scenario on Flower's grid, then save, report and track it as ``fedsim run`` does.

    Raises:
        SystemExit: with ``fedsim run``'s exit code when the run failed or its input was bad.
    """
    from fedsim.commands.execute import execute_run
    from fedsim.commands.output import EXIT_BAD_INPUT, EXIT_OK, print_error
    from fedsim.scenario import ScenarioError

    console, errors = Console(soft_wrap=True, highlight=False), Console(stderr=True, soft_wrap=True)
    try:
        scenario, source = _scenario(context.run_config)
    except ScenarioError as err:
        print_error(errors, err)
        raise SystemExit(EXIT_BAD_INPUT) from None
    out = Path(str(context.run_config.get("out") or f"reports/{scenario.name}")).resolve()
    console.print(f"flwr run: {source} → {out}", highlight=False)
    code = execute_run(
        scenario,
        out,
        console=console,
        errors=errors,
        verbose=False,
        source=source,
        flower_run=(grid, context),
    )
    if code != EXIT_OK:
        raise SystemExit(code)


@lru_cache(maxsize=4)
def _client_app(scenario_path: str, overrides: str) -> ClientApp:
    """Fedsim's ClientApp for a scenario, built once per worker process."""
    from fedsim.commands.run import rebuilt_client_task
    from fedsim.simulation.client_app import create_client_app
    from fedsim.simulation.run import quiet_logging

    quiet_logging(verbose=False)  # Opacus's and PyTorch's warnings, as fedsim run's workers
    scenario, _ = _scenario({"scenario": scenario_path, "overrides": overrides})
    return create_client_app(rebuilt_client_task(scenario))


@client_app.train()
def train(msg: Message, context: Context) -> Message:
    """Answer a training request with fedsim's ClientApp for the run config's scenario."""
    return _delegate(msg, context)


@client_app.query()
def query(msg: Message, context: Context) -> Message:
    """Answer the ServerApp's start-up query with fedsim's ClientApp."""
    return _delegate(msg, context)


def _delegate(msg: Message, context: Context) -> Message:
    config = context.run_config
    return _client_app(str(config["scenario"]), str(config.get("overrides", "")))(msg, context)
