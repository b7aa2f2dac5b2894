"""Running one run's rounds through Flower's simulation engine on Ray.

This module is the only caller of ``flwr.simulation.run_simulation`` (deprecated
in Flower 1.42 in favour of ``flwr run``, which needs an installed Flower app
and leaves a SuperLink process behind).
"""

from __future__ import annotations

import ctypes
import logging
import os
import warnings

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
WORKER_MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "1073741824", "MALLOC_TRIM_THRESHOLD_": "1073741824"}
"""glibc malloc settings for the Ray workers a local run starts (they inherit this environment).

They keep large per-step buffers (Opacus's unfolded activations and per-sample
gradients, the CNN's activations of a batch of 512, 44 MB) in the heap,
rather than mapping and unmapping them, and touching fresh pages, every step.
Measured with ``python -m bench.run --only dp`` on 2 cores: the CNN's
DP-SGD/non-private step ratio went from 1.9-3.2 (median 2.4) to 1.9-2.1 with a
32 MB threshold; evaluating the CNN on the 10,000 Fashion-MNIST test images in
batches of 1,024 went from 1.9 s (half of it in the kernel: 930,000 page
faults) to 0.8 s with 1 GB.
"""
_GLIBC_CAPPED_MMAP_THRESHOLD = "33554432"
"""The largest mmap threshold older glibc accepts (``HEAP_MAX_SIZE / 2`` on 64 bits, 32 MiB)."""


def _tune_malloc() -> None:
    """The same settings for this process (the driver evaluates the global model every round).

    glibc reads the environment only at start-up; ``mallopt`` (``M_TRIM_THRESHOLD`` = -1,
    ``M_MMAP_THRESHOLD`` = -3, ``M_ARENA_MAX`` = -8, from glibc's ``malloc.h``) sets
    them now, except those the user set in the environment. One arena, since the
    ServerApp (and so evaluation) runs in a thread, whose own arena would map every
    block above 64 MB. Where glibc refuses the 1 GB threshold (older versions cap it
    at 32 MiB), the workers get the cap instead. No-op without glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ and not libc.mallopt(
        -3, int(WORKER_MALLOC_ENV["MALLOC_MMAP_THRESHOLD_"])
    ):
        WORKER_MALLOC_ENV["MALLOC_MMAP_THRESHOLD_"] = _GLIBC_CAPPED_MMAP_THRESHOLD
        libc.mallopt(-3, int(_GLIBC_CAPPED_MMAP_THRESHOLD))
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        libc.mallopt(-1, int(WORKER_MALLOC_ENV["MALLOC_TRIM_THRESHOLD_"]))
    if "MALLOC_ARENA_MAX" not in os.environ:
        libc.mallopt(-8, 1)


_tune_malloc()
for _name, _value in WORKER_MALLOC_ENV.items():
    os.environ.setdefault(_name, _value)

import torch  # noqa: E402
from flwr.app import ArrayRecord  # noqa: E402
from flwr.simulation import run_simulation  # noqa: E402

from fedsim.audit.canaries import DiracCanaries  # noqa: E402
from fedsim.audit.input_canaries import InputCanaries  # noqa: E402
from fedsim.privacy.planning import RoundPlanner  # noqa: E402
from fedsim.simulation.backend import ConfigurationError, backend_config  # noqa: E402
from fedsim.simulation.client_app import create_client_app  # noqa: E402
from fedsim.simulation.client_task import ClientTask  # noqa: E402
from fedsim.simulation.legacy import create_secagg_client_app, create_secagg_server_app  # noqa: E402
from fedsim.simulation.server_app import create_server_app  # noqa: E402
from fedsim.simulation.session import RunSession  # noqa: E402
from fedsim.simulation.spec import RunSpec  # noqa: E402


class SimulationError(RuntimeError):
    """The simulation started but did not complete every round."""


def quiet_logging(verbose: bool) -> None:
    """Silence Flower (and Opacus's root-logger double printing) unless verbose."""
    flwr_logger = logging.getLogger("flwr")
    flwr_logger.propagate = False  # Opacus calls logging.basicConfig on import
    # A failing client is recorded in its round (rounds.csv: failed_clients); Flower's own
    # ERROR lines and tracebacks for it are shown with --verbose only.
    flwr_logger.setLevel(logging.DEBUG if verbose else logging.CRITICAL)
    if not verbose:
        warnings.filterwarnings("ignore", module=r"opacus(\..*)?")
        warnings.filterwarnings("ignore", category=UserWarning, module="torch")


def round_planner(spec: RunSpec) -> RoundPlanner:
    """The run's per-client DP-SGD planner, shared by the server's accounting and the clients."""
    fed = spec.federation
    return RoundPlanner(
        budget=spec.privacy,
        train=spec.train,
        num_clients=fed.num_clients,
        rounds=fed.rounds,
        fraction_train=fed.fraction_train,
        seed=spec.seed,
        cohort_sampling=fed.cohort_sampling,
    )


def client_task(
    spec: RunSpec, canaries: DiracCanaries | None = None, input_canaries: InputCanaries | None = None
) -> ClientTask:
    """What every ClientApp of the run needs, and nothing more (with the run's planned canaries)."""
    return ClientTask(
        data=spec.data,
        partition=spec.partition,
        model=spec.model,
        train=spec.train,
        planner=round_planner(spec),
        dp_sgd=spec.dp_sgd,
        faults=spec.faults,
        seed=spec.seed,
        canaries=canaries,
        input_canaries=input_canaries,
    )


def _apps(
    spec: RunSpec, *, session: RunSession, initial_arrays: ArrayRecord, round_offset: int, resuming: bool
):
    """The ServerApp and ClientApp: Flower's Message API, or its legacy workflow API for SecAgg+.

    Raises:
        ConfigurationError: if SecAgg+ is asked for with fewer than 2 clients per round.
    """
    privacy, user = spec.privacy, session.privacy.user
    dirac = session.canaries.canaries if session.canaries is not None else None
    task = client_task(spec, dirac, session.input_canaries)
    if not spec.federation.secure_aggregation:
        server = create_server_app(
            spec,
            session=session,
            initial_arrays=initial_arrays,
            user_noise_multiplier=user.noise_multiplier if user else None,
            round_offset=round_offset,
            resuming=resuming,
        )
        return server, create_client_app(task)
    if spec.federation.cohort_size < 2:
        raise ConfigurationError(
            "privacy.secure-aggregation needs at least 2 clients per round; raise federation.num-clients "
            "or federation.fraction-train"
        )
    user_dp = (user.noise_multiplier, privacy.user_level.clipping_norm) if user else None
    server = create_secagg_server_app(spec, session=session, initial_arrays=initial_arrays, user_dp=user_dp)
    return server, create_secagg_client_app(task, user_dp=user_dp)


def simulate(
    spec: RunSpec,
    *,
    session: RunSession,
    initial_state: dict[str, torch.Tensor],
    backend: dict,
    round_offset: int = 0,
    resuming: bool = False,
    verbose: bool = False,
    flower_run: tuple | None = None,
) -> None:
    """Run the rounds of ``spec`` through Flower's ServerApp and ClientApps on Ray.

    1. (the caller has checked the resources: ``backend`` is :func:`backend_config`'s);
    2. build the ServerApp (the session is its strategy's hooks) and the ClientApp;
    3. ``run_simulation`` with one SuperNode per client, from round ``round_offset + 1``
       (inside ``flwr run``: the ServerApp on Flower's grid, :mod:`fedsim.flower_app`);
    4. check that every round completed (or the privacy rules stopped the run) and some client trained.

    Args:
        spec: the run.
        session: receives every round's replies, releases and evaluation.
        initial_state: the global model's weights to start from (the checkpoint's when
            resuming); copied before the first round.
        backend: the Ray backend configuration (:func:`backend_config`).
        round_offset: rounds already completed (resume).
        resuming: whether this continues an interrupted run (its round 0 is not evaluated again).
        verbose: show Flower's and Ray's logs.
        flower_run: ``(grid, context)`` of the ServerApp that ``flwr run`` started, or None.

    Raises:
        ConfigurationError: before anything runs: SecAgg+ with fewer than 2 clients per round.
        SimulationError: if the run stopped before its last round, or every
            sampled client failed in every round.
    """
    server_app, client_app = _apps(  # 2
        spec,
        session=session,
        initial_arrays=ArrayRecord(initial_state),
        round_offset=round_offset,
        resuming=resuming,
    )
    if flower_run is not None:  # 3
        server_app(*flower_run)
    else:
        run_simulation(
            server_app, client_app, spec.federation.num_clients, "ray", backend, verbose_logging=verbose
        )
    rounds = session.recorder.rounds  # 4
    completed = max((r.round for r in rounds), default=-1)
    if completed < spec.federation.rounds and session.privacy.stop_reason is None:
        raise SimulationError(
            f"the simulation stopped after round {max(completed, 0)} of {spec.federation.rounds}; "
            "rerun with --verbose to see Flower's and Ray's logs"
        )
    if completed > 0 and all(r.clients_trained == 0 and r.clients_failed for r in rounds[1:]):
        raise SimulationError(
            f"every sampled client failed in every round; first error: {session.recorder.first_error}"
        )


__all__ = ["ConfigurationError", "SimulationError", "WORKER_MALLOC_ENV", "backend_config", "simulate"]
