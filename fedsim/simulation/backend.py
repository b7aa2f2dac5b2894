"""The Ray backend of a run: where Ray runs and what each simulated client may use.

Flower's simulation engine takes these settings as ``backend_config``; they are
checked here first, because a bad address or an impossible resource request
otherwise makes Ray retry or wait for minutes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from fedsim.simulation.spec import SimulationSpec


class ConfigurationError(ValueError):
    """The scenario cannot run here: missing data, impossible split or resources."""


def _current_ray_cluster() -> str | None:
    """Address Ray's ``ray start`` recorded for this machine (what ``address="auto"`` reads)."""
    import tempfile

    path = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def check_ray_address(address: str, *, timeout_s: float = 5.0) -> None:
    """Fail fast when a Ray cluster address cannot be reached (``ray.init`` would retry for minutes).

    ``"local"`` (start a private instance) needs no check; ``"auto"`` must find a
    cluster started on this machine with ``ray start`` (``RAY_ADDRESS`` or Ray's
    cluster file), whose port must then answer.

    Raises:
        ConfigurationError: if ``address`` is not ``[ray://]host:port`` or nothing
            answers on that port within ``timeout_s`` seconds.
    """
    import socket

    if address == "local":
        return
    if address == "auto":
        found = os.environ.get("RAY_ADDRESS") or _current_ray_cluster()
        if not found:
            raise ConfigurationError(
                "resources.ray-address = 'auto' but no Ray cluster runs on this machine; "
                "start one with 'ray start --head' or use 'local'"
            )
        address = found
    host_port = address.removeprefix("ray://")
    host, sep, port = host_port.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigurationError(
            f"resources.ray-address = {address!r}: expected 'local', 'auto', 'host:port' or 'ray://host:port'"
        )
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as err:
        raise ConfigurationError(
            f"resources.ray-address = {address!r}: cannot reach a Ray cluster there ({err}); "
            "start one with 'ray start --head' or use 'local'"
        ) from None


def backend_config(spec: SimulationSpec, *, verbose: bool) -> dict:
    """The Ray backend configuration for ``run_simulation``.

    Each client actor reserves ``client_cpus`` CPUs and ``client_gpus`` of a GPU
    (fractions share one GPU), and Ray restarts it if its process is killed.

    Args:
        spec: the run's resources and Ray address.
        verbose: keep Ray's logs.

    Raises:
        ConfigurationError: if clients ask for a GPU on a local run without one
            (Flower's actor pool would otherwise wait forever), or for more CPUs
            than the machine has, or if the Ray cluster address cannot be reached.
    """
    fed = spec
    if fed.client_gpus > 0 and fed.ray_address == "local" and not torch.cuda.is_available():
        raise ConfigurationError(
            f"resources.client-gpus = {fed.client_gpus} but no CUDA GPU is visible; "
            "set resources.client-gpus = 0 or run on a machine with a GPU"
        )
    if fed.ray_address == "local" and fed.client_cpus > (os.cpu_count() or 1):
        raise ConfigurationError(
            f"resources.client-cpus = {fed.client_cpus} but this machine has {os.cpu_count()} CPUs; lower it"
        )
    check_ray_address(fed.ray_address)
    init_args: dict = {"address": fed.ray_address, "include_dashboard": False}
    if not verbose:
        init_args.update({"logging_level": logging.ERROR, "log_to_driver": False})
    # Ray restarts a client actor whose worker process dies (Flower would keep handing
    # messages to the dead actor). The message it was running fails, and so do those Flower
    # hands it while it restarts; nothing is retried, so no client trains twice.
    resources = {
        "num_cpus": fed.client_cpus,
        "num_gpus": fed.client_gpus,
        "max_restarts": -1,
        "max_task_retries": 0,
    }
    return {"init_args": init_args, "client_resources": resources}


def run_environment() -> dict:
    """Versions and hardware the run used, for the report."""
    import platform
    from importlib.metadata import version

    import flwr
    import ray

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "cuda": torch.cuda.is_available(),
        "flwr": flwr.__version__,
        "ray": ray.__version__,
        "opacus": version("opacus"),
    }
