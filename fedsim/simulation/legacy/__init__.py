"""The SecAgg+ path: Flower's legacy workflow API, which SecAgg+ secure aggregation needs in Flower 1.42.

SecAgg+ (Bell et al. 2020, "Secure Single-Server Aggregation with
(Poly)Logarithmic Overhead", https://eprint.iacr.org/2020/704): the server
learns only the clients' weighted sum, never one client's model. This path runs
the same client training (:func:`fedsim.simulation.client_app.client_round`)
and server bookkeeping (the run session) as the Message-API path.

Modules: :mod:`~fedsim.simulation.legacy.settings` (protocol parameters and
the quantisation error bound), :mod:`~fedsim.simulation.legacy.server` (the
ServerApp), :mod:`~fedsim.simulation.legacy.client` (the ClientApp).
"""

from fedsim.simulation.legacy.client import create_secagg_client_app
from fedsim.simulation.legacy.server import create_secagg_server_app, run_secagg
from fedsim.simulation.legacy.settings import SecAggSettings, quantization_error_bound

__all__ = [
    "SecAggSettings",
    "create_secagg_client_app",
    "create_secagg_server_app",
    "quantization_error_bound",
    "run_secagg",
]
