"""Running one scenario through Flower's simulation engine on Ray.

This module is the only caller of ``flwr.simulation.run_simulation`` (deprecated
in Flower 1.42 in favour of ``flwr run``, which needs an installed Flower app
and leaves a SuperLink process behind).
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
WORKER_MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "1073741824"}
"""glibc malloc settings for the Ray workers a local run starts (they inherit this environment).

They keep DP-SGD's large per-step buffers (Opacus's unfolded activations and
per-sample gradients) in the heap, rather than mapping and unmapping them
every step. Measured with ``python -m bench.run --only dp`` on 2 cores: the
CNN's DP-SGD/non-private step ratio went from 1.9-3.2 (median 2.4) to 1.9-2.1.
"""
for _name, _value in WORKER_MALLOC_ENV.items():
    os.environ.setdefault(_name, _value)

import torch  # noqa: E402
from flwr.app import ArrayRecord  # noqa: E402
from flwr.simulation import run_simulation  # noqa: E402

from fedsim.data import load_dataset  # noqa: E402
from fedsim.models import build_model  # noqa: E402
from fedsim.partition import partition_stats  # noqa: E402
from fedsim.privacy import (  # noqa: E402
    BudgetGuard,
    PrivacyLedger,
    ReleaseLedger,
    client_sample_rate,
    cohort_size,
    compute_epsilon,
    resolve_user_noise_multiplier,
)
from fedsim.results import RoundRecord, RunResult  # noqa: E402
from fedsim.simulation.auditing import audit_run  # noqa: E402
from fedsim.simulation.backend import ConfigurationError, backend_config  # noqa: E402
from fedsim.simulation.checkpoint import Checkpoint, write_checkpoint  # noqa: E402
from fedsim.simulation.client_app import (  # noqa: E402
    client_partitions,
    client_plan,
    create_client_app,
    get_device,
)
from fedsim.simulation.recorder import RunRecorder, UserLevelAccounting  # noqa: E402
from fedsim.simulation.scenario import Scenario  # noqa: E402
from fedsim.simulation.secagg import create_secagg_client_app, create_secagg_server_app  # noqa: E402
from fedsim.simulation.server_app import create_server_app  # noqa: E402


class SimulationError(RuntimeError):
    """The simulation started but did not complete every round."""


def _quiet_logging(verbose: bool) -> None:
    """Silence Flower (and Opacus's root-logger double printing) unless verbose."""
    flwr_logger = logging.getLogger("flwr")
    flwr_logger.propagate = False  # Opacus calls logging.basicConfig on import
    # A failing client is recorded in its round (rounds.csv: failed_clients); Flower's own
    # ERROR lines and tracebacks for it are shown with --verbose only.
    flwr_logger.setLevel(logging.DEBUG if verbose else logging.CRITICAL)
    if not verbose:
        warnings.filterwarnings("ignore", module=r"opacus(\..*)?")
        warnings.filterwarnings("ignore", category=UserWarning, module="torch")


def run_scenario(
    scenario: Scenario,
    *,
    verbose: bool = False,
    on_round: Callable[[RoundRecord], None] | None = None,
    run_dir: Path | None = None,
    resume: Checkpoint | None = None,
) -> RunResult:
    """Run a scenario end to end and return its results.

    With ``run_dir``, the run's progress is written there after every round
    (:mod:`fedsim.simulation.checkpoint`); the final results are left to the
    caller (:func:`fedsim.results.save_run`).

    Pipeline:

    1. resolve the scenario into per-layer specs;
    2. load the data set and split its training set among clients (the same
       cached split the Ray workers compute);
    3. build the seeded initial model, the privacy ledger and the recorder;
    4. run the Flower ServerApp and ClientApps with ``run_simulation`` on Ray
       (from the checkpoint's round and state when resuming);
    5. check every round completed and some client trained;
    6. audit the final global model (membership inference, :mod:`fedsim.audit`)
       and assemble the :class:`RunResult`.

    Args:
        scenario: a validated scenario.
        verbose: show Flower and Ray logs.
        on_round: called after each round with its record (progress display).
        run_dir: where to write per-round progress and checkpoints, or None.
        resume: the checkpoint of an interrupted run of this scenario, to continue from.

    Raises:
        ConfigurationError: before anything runs: data set not installed,
            impossible split, resources this machine lacks, or a resume of a
            SecAgg+ run (its legacy Flower workflow cannot start mid-run).
        SimulationError: if the run stopped before its last round, or every
            sampled client failed in every round.
    """
    start = time.perf_counter()
    _quiet_logging(verbose)
    specs = scenario.specs()  # 1
    config = backend_config(specs, verbose=verbose)

    try:  # 2
        train_set, test_set = load_dataset(specs.data)
        parts = client_partitions(specs.data, specs.partition)
    except (FileNotFoundError, ValueError) as err:
        raise ConfigurationError(str(err)) from err
    sizes = [len(p) for p in parts]
    if min(sizes) < 1:
        raise ConfigurationError(
            f"a client received no examples ({specs.partition.name} split of {len(train_set)} "
            f"examples among {len(sizes)} clients); use fewer clients, a larger alpha or "
            "data.min-partition-size"
        )

    model = build_model(  # 3
        specs.model,
        input_shape=train_set.input_shape,
        num_classes=train_set.num_classes,
        vocab_size=train_set.vocab_size,
        seed=specs.seed,
    )
    if resume is not None:
        if specs.privacy.secure_aggregation:
            raise ConfigurationError("--resume: SecAgg+ runs (privacy.secure-aggregation) cannot be resumed")
        model.load_state_dict(resume.arrays)
    initial_arrays = ArrayRecord(model.state_dict())
    privacy = specs.privacy
    ledger = guard = None
    tiers = privacy.client_tiers(specs.federation.num_clients, seed=specs.seed)
    budgets = privacy.client_budgets(specs.federation.num_clients, seed=specs.seed)
    if privacy.is_sample_level:
        ledger = PrivacyLedger(delta=privacy.target_delta, accountant=privacy.accountant)
        try:
            plans = [client_plan(specs, partition_id=pid, num_examples=n)[0] for pid, n in enumerate(sizes)]
        except ValueError as err:
            raise ConfigurationError(f"privacy: cannot calibrate the noise: {err}") from err
        cost = {pid: _one_round_epsilon(plan, privacy) for pid, plan in enumerate(plans)}
        unaffordable = [
            pid for pid, budget in enumerate(budgets) if budget is not None and cost[pid] > budget
        ]
        if unaffordable:
            first = unaffordable[0]
            raise ConfigurationError(
                f"privacy: {len(unaffordable)} client(s) cannot afford a single round (client {first}: "
                f"one round costs ε {cost[first]:.3f}, its budget is {budgets[first]:g}); raise "
                "privacy.target-epsilon (or the tier's) or privacy.noise-multiplier"
            )
        guard = BudgetGuard(ledger, budgets=budgets, plans=plans)
    user = _user_level_accounting(specs)
    recorder = RunRecorder(
        test_set=test_set,
        model=model,
        ledger=ledger,
        device=get_device(),
        on_round=on_round or (lambda record: None),
        guard=guard,
        min_clients=privacy.min_clients,
        when_too_few=privacy.when_too_few,
        user=user,
        max_grad_norm=privacy.max_grad_norm,
    )
    offset, earlier_s = (resume.round, resume.wall_s) if resume is not None else (0, 0.0)
    if resume is not None:
        recorder.load_state_dict(resume.state)
    if run_dir is not None and not specs.privacy.secure_aggregation:  # SecAgg+ runs cannot resume
        resolved = scenario.to_toml_dict()
        recorder.on_checkpoint = lambda state, arrays: write_checkpoint(
            run_dir, Checkpoint(resolved, state, arrays, earlier_s + time.perf_counter() - start)
        )

    server_app, client_app = _apps(
        specs,
        recorder=recorder,
        initial_arrays=initial_arrays,
        user=user,
        round_offset=offset,
        resuming=resume is not None,
    )
    run_simulation(  # 4
        server_app=server_app,
        client_app=client_app,
        num_supernodes=specs.federation.num_clients,
        backend_name="ray",
        backend_config=config,
        verbose_logging=verbose,
    )

    completed = max((r.round for r in recorder.rounds), default=-1)  # 5
    if completed < specs.federation.rounds and recorder.stop_reason is None:
        raise SimulationError(
            f"the simulation stopped after round {max(completed, 0)} of {specs.federation.rounds}; "
            "rerun with --verbose to see Flower's and Ray's logs"
        )
    if completed > 0 and all(r.clients_trained == 0 and r.clients_failed for r in recorder.rounds[1:]):
        raise SimulationError(
            f"every sampled client failed in every round; first error: {recorder.first_error}"
        )
    final = recorder.rounds[-1]
    clients = recorder.client_records(sizes, tiers=tiers, budgets=budgets)
    audit = audit_run(
        specs,
        model=recorder.model,
        train_set=train_set,
        test_set=test_set,
        parts=parts,
        clients=clients,
        rounds=completed,
    )
    summary = {
        "scenario": specs.name,
        "dataset": specs.data.dataset,
        "model": specs.model.name,
        "partitioner": specs.partition.name,
        "num_clients": specs.federation.num_clients,
        "rounds_completed": completed,
        "final_accuracy": final.accuracy,
        "final_loss": final.loss,
        "diverged": not math.isfinite(final.loss),
        "baseline_accuracy": test_set.baseline_accuracy(),
        "train_examples": int(sum(sizes)),
        "test_examples": len(test_set),
        "num_classes": train_set.num_classes,
        "class_names": list(train_set.vocab) if train_set.vocab is not None else None,
        "client_users": (
            [train_set.group_names[int(train_set.groups[p[0]])] for p in parts]
            if specs.partition.name == "natural-id"
            else None
        ),
        "rounds_planned": specs.federation.rounds,
        "stop_reason": recorder.stop_reason,
        **_privacy_summary(specs, final, recorder),
        "audit": audit,
        "seed": specs.seed,
        "wall_s": earlier_s + time.perf_counter() - start,
        "resumed_from_round": resume.round if resume is not None else None,
        "environment": _environment(),
    }
    return RunResult(
        summary=summary,
        rounds=recorder.rounds,
        clients=clients,
        scenario=scenario.to_toml_dict(),
        label_counts=partition_stats(train_set.y, list(parts), num_classes=train_set.num_classes).tolist(),
    )


def _apps(
    specs,
    *,
    recorder: RunRecorder,
    initial_arrays: ArrayRecord,
    user: UserLevelAccounting | None,
    round_offset: int = 0,
    resuming: bool = False,
):
    """The ServerApp and ClientApp: Flower's Message API, or its legacy workflow API for SecAgg+.

    Raises:
        ConfigurationError: if SecAgg+ is asked for with fewer than 2 clients per round.
    """
    privacy, fed = specs.privacy, specs.federation
    if not privacy.secure_aggregation:
        server = create_server_app(
            specs,
            recorder=recorder,
            initial_arrays=initial_arrays,
            user_noise_multiplier=user.noise_multiplier if user else None,
            round_offset=round_offset,
            resuming=resuming,
        )
        return server, create_client_app(specs)
    if cohort_size(fed.num_clients, fed.fraction_train) < 2:
        raise ConfigurationError(
            "privacy.secure-aggregation needs at least 2 clients per round; raise federation.num-clients "
            "or federation.fraction-train"
        )
    user_dp = (user.noise_multiplier, privacy.user_level.clipping_norm) if user else None
    server = create_secagg_server_app(
        specs, recorder=recorder, initial_arrays=initial_arrays, user_dp=user_dp
    )
    return server, create_secagg_client_app(specs, user_dp=user_dp)


def _one_round_epsilon(plan, privacy) -> float:
    """ε of a single planned DP-SGD round (what a client needs to train at all)."""
    return compute_epsilon(
        (plan.as_history_entry(),), delta=privacy.target_delta, accountant=privacy.accountant
    )


def _user_level_accounting(specs) -> UserLevelAccounting | None:
    """The user-level ledger and nominal z of a DP-FedAvg run (None without user-level DP).

    Raises:
        ConfigurationError: if no z reaches the user-level budget, or adaptive
            clipping's count noise is too small for z (z < clipped-count-stddev is needed).
    """
    privacy, fed = specs.privacy, specs.federation
    user = privacy.user_level
    if user is None:
        return None
    q = client_sample_rate(fed.num_clients, fed.fraction_train)
    try:
        z = resolve_user_noise_multiplier(
            user, delta=privacy.target_delta, accountant=privacy.accountant, sample_rate=q, rounds=fed.rounds
        )
    except ValueError as err:
        raise ConfigurationError(f"privacy.user-target-epsilon: {err}") from err
    if user.clipping == "adaptive":
        stddev = user.clipped_count_stddev or cohort_size(fed.num_clients, fed.fraction_train) / 20
        if z >= stddev:
            raise ConfigurationError(
                f"privacy: adaptive clipping with a user-level noise multiplier of {z:.3g} needs "
                f"privacy.clipped-count-stddev above {z:.3g} (now {stddev:.3g}); "
                "raise it or lower the noise"
            )
    return UserLevelAccounting(
        ledger=ReleaseLedger(delta=privacy.target_delta, accountant=privacy.accountant),
        sample_rate=q,
        noise_multiplier=z,
        target_epsilon=user.target_epsilon,
    )


def _privacy_summary(specs, final: RoundRecord, recorder: RunRecorder) -> dict:
    """The privacy figures of ``summary.json``: mode, accountant, both levels' settings and ε."""
    privacy = specs.privacy
    sample, user = privacy.is_sample_level, privacy.user_level
    return {
        "privacy_mode": privacy.mode,
        "accountant": privacy.accountant if privacy.mode != "none" else None,
        "delta": privacy.target_delta if privacy.mode != "none" else None,
        "epsilon_max": final.epsilon_max,
        "epsilon_mean": final.epsilon_mean,
        "target_epsilon": privacy.target_epsilon if sample else None,
        "tiers": [
            {"name": t.name, "share": t.share, "target_epsilon": t.target_epsilon} for t in privacy.tiers
        ]
        if sample
        else None,
        "calibrate_for": privacy.calibrate_for if sample else None,
        "max_grad_norm": privacy.max_grad_norm if sample else None,
        "grad_sample_mode": privacy.grad_sample_mode if sample else None,
        "clients_stopped": len(recorder.guard.stopped_round) if recorder.guard is not None else None,
        "user_epsilon": final.user_epsilon,
        "user_budget_exceeded": (
            final.user_epsilon > user.target_epsilon
            if user and user.target_epsilon is not None and final.user_epsilon is not None
            else None
        ),
        "user_target_epsilon": user.target_epsilon if user else None,
        "user_noise_multiplier": recorder.user.noise_multiplier if recorder.user else None,
        "client_sample_rate": recorder.user.sample_rate if recorder.user else None,
        "clipping": user.clipping if user else None,
        "clip_on": user.clip_on if user else None,
        "secure_aggregation": privacy.secure_aggregation,
    }


def _environment() -> dict:
    """Versions and hardware the run used, for the report."""
    import platform

    import flwr
    import opacus
    import ray

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "cuda": torch.cuda.is_available(),
        "flwr": flwr.__version__,
        "ray": ray.__version__,
        "opacus": opacus.__version__,
    }


__all__ = ["ConfigurationError", "SimulationError", "backend_config", "run_scenario"]
