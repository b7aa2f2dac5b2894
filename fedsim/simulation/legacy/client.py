"""The legacy ClientApp of the SecAgg+ path: fedsim's client round behind Flower's ``secaggplus_mod``."""

from __future__ import annotations

import numpy as np
import torch
from flwr.app import Context
from flwr.client import NumPyClient
from flwr.client.mod import fixedclipping_mod, secaggplus_mod
from flwr.clientapp import ClientApp

from fedsim.aggregation.legacy import ARRAY_KEYS_KEY, SERVER_ROUND_KEY, decode_fit_config
from fedsim.aggregation.user_dp import zero_safe
from fedsim.simulation.client_app import client_round
from fedsim.simulation.client_task import ClientTask


class _SecAggClient(NumPyClient):
    """A legacy client that answers ``fit`` with :func:`client_round`."""

    def __init__(self, task: ClientTask, *, partition_id: int) -> None:
        self.task = task
        self.partition_id = partition_id

    def fit(self, parameters, config):
        """Train on the global arrays; return the new arrays, the weight and the metrics."""
        config = decode_fit_config(config)
        keys = config[ARRAY_KEYS_KEY]
        state_dict = {k: torch.from_numpy(np.array(a)) for k, a in zip(keys, parameters, strict=True)}
        new_state, metrics = client_round(
            self.task,
            partition_id=self.partition_id,
            server_round=int(config[SERVER_ROUND_KEY]),
            state_dict=state_dict,
            config=config,
        )
        return [new_state[k].numpy() for k in keys], int(metrics["weight"]), metrics


def create_secagg_client_app(task: ClientTask, *, user_dp: tuple[float, float] | None = None) -> ClientApp:
    """Build the legacy ClientApp for SecAgg+ runs.

    Each client trains with :func:`client_round` in the "collect masked
    vectors" stage and replies with its ``weight`` as ``FitRes.num_examples`` and
    its metrics as ``FitRes.metrics``; ``secaggplus_mod`` quantises and masks the
    weighted arrays. With ``user_dp`` the mods are ``[secaggplus_mod,
    zero_safe(fixedclipping_mod)]``: SecAgg+ outermost (only its collect stage
    carries a model, and it must mask the clipped update), clipping innermost.

    Args:
        task: the run's :class:`~fedsim.simulation.client_task.ClientTask`.
        user_dp: as given to :func:`fedsim.simulation.legacy.run_secagg` (only
            whether it is None matters here: the clipping norm comes from the
            server's fit config).

    Returns:
        The ClientApp.
    """

    def client_fn(context: Context):
        return _SecAggClient(
            task,
            partition_id=int(context.node_config["partition-id"]),
        ).to_client()

    mods = [secaggplus_mod] if user_dp is None else [secaggplus_mod, zero_safe(fixedclipping_mod)]
    return ClientApp(client_fn=client_fn, mods=mods)
