"""One run, orchestrated in numbered steps: scenario → data → privacy → simulation → audit → result."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fedsim.audit.canaries import CanaryObserver, plan_dirac_canaries
from fedsim.audit.input_canaries import InputCanaries, plan_input_canaries
from fedsim.audit.spec import NO_DP_CANARY_NORM
from fedsim.commands.summary import build_summary, client_records
from fedsim.data import ArrayDataset, load_dataset
from fedsim.models import build_model
from fedsim.partition import partition_stats
from fedsim.privacy.accounting import RunPrivacy
from fedsim.privacy.setup import PrivacySetupError, create_run_privacy
from fedsim.results import RoundRecord, RunResult
from fedsim.scenario import Scenario, build_run_spec
from fedsim.simulation.backend import ConfigurationError, backend_config
from fedsim.simulation.checkpoint import Checkpoint, write_checkpoint
from fedsim.simulation.client_app import get_device
from fedsim.simulation.client_task import ClientTask
from fedsim.simulation.recorder import RoundRecorder
from fedsim.simulation.run import client_task, quiet_logging, round_planner, simulate
from fedsim.simulation.session import RunSession
from fedsim.simulation.shards import client_partitions
from fedsim.simulation.spec import RunSpec


@dataclass(frozen=True)
class Prepared:
    """A run's data, ready to train.

    Attributes:
        train_set: the training set the clients' shards index.
        test_set: what the global model is evaluated on (the test set less any input canaries).
        parts: each client's rows of ``train_set``.
        sizes: each client's training examples, its included input canaries counted.
        model: the seeded initial model.
        full_test_set: the whole test set (the input canaries' rows included).
        input_canaries: the black-box canaries planted, or None.
    """

    train_set: ArrayDataset
    test_set: ArrayDataset
    parts: tuple[np.ndarray, ...]
    sizes: list[int]
    model: torch.nn.Module
    full_test_set: ArrayDataset
    input_canaries: InputCanaries | None


def initial_model(spec: RunSpec, train_set: ArrayDataset) -> torch.nn.Module:
    """The run's seeded initial global model, shaped for ``train_set`` (inputs, classes, vocabulary)."""
    return build_model(
        spec.model,
        input_shape=train_set.input_shape,
        num_classes=train_set.num_classes,
        vocab_size=train_set.vocab_size,
        seed=spec.seed,
    )


def prepare_data(spec: RunSpec, *, resume: Checkpoint | None) -> Prepared:
    """Load the data set, split it among the clients and build the seeded initial model.

    The split is the same cached one the Ray workers compute
    (:func:`fedsim.simulation.shards.client_partitions`).

    Raises:
        ConfigurationError: data set not installed, impossible split, a client
            without examples, or a resume of a SecAgg+ run.
    """
    try:
        train_set, test_set = load_dataset(spec.data)
        parts = client_partitions(spec.data, spec.partition)
    except (FileNotFoundError, ValueError) as err:
        raise ConfigurationError(str(err)) from err
    sizes = [len(p) for p in parts]
    if min(sizes) < 1:
        raise ConfigurationError(
            f"a client received no examples ({spec.partition.name} split of {len(train_set)} "
            f"examples among {len(sizes)} clients); use fewer clients, a larger alpha or "
            "data.min-partition-size"
        )
    model = initial_model(spec, train_set)
    if resume is not None:
        if spec.federation.secure_aggregation:
            raise ConfigurationError("--resume: SecAgg+ runs (privacy.secure-aggregation) cannot be resumed")
        model.load_state_dict(resume.arrays)
    inputs, evaluated = _input_canaries(spec, test_set)
    if inputs is not None:
        sizes = [n + k for n, k in zip(sizes, inputs.per_client(len(sizes)), strict=True)]
    return Prepared(train_set, evaluated, parts, sizes, model, test_set, inputs)


def _input_canaries(spec: RunSpec, test_set: ArrayDataset) -> tuple[InputCanaries | None, ArrayDataset]:
    """The run's mislabelled input canaries (or None) and the test set left to evaluate on.

    Raises:
        ConfigurationError: if the test set is too small for them.
    """
    audit = spec.audit
    if not (audit.enabled and audit.input_canaries):
        return None, test_set
    try:
        inputs = plan_input_canaries(
            audit.input_canaries, test_set=test_set, num_clients=spec.federation.num_clients, seed=spec.seed
        )
    except ValueError as err:
        raise ConfigurationError(f"audit.input-canaries: {err}") from err
    return inputs, inputs.evaluation_set(test_set)


def run_scenario(
    scenario: Scenario,
    *,
    verbose: bool = False,
    on_round: Callable[[RoundRecord], None] | None = None,
    run_dir: Path | None = None,
    resume: Checkpoint | None = None,
    flower_run: tuple | None = None,
) -> RunResult:
    """Run a scenario end to end and return its results, in six steps.

    1. build each layer's spec from the scenario and check the resources;
    2. load the data, split it among clients, build the seeded initial model;
    3. create the privacy accounting, refusing settings that cannot work;
    4. create the session (records, privacy, checkpoints), restored when resuming;
    5. run the rounds through Flower and Ray (:func:`fedsim.simulation.run.simulate`);
    6. audit the final global model, assemble the typed summary and the :class:`RunResult`.

    Args:
        scenario: a validated scenario.
        verbose: show Flower and Ray logs.
        on_round: called with each round's record (progress display), or None.
        run_dir: where to write per-round progress and checkpoints, or None
            (the caller saves the final results: :func:`fedsim.results.save_run`).
        resume: the checkpoint of an interrupted run of this scenario to continue, or None.
        flower_run: inside ``flwr run``: the ServerApp's ``(grid, context)`` (step 5 runs on it).

    Raises:
        ConfigurationError: before anything trains: data set not installed, impossible split,
            resources this machine lacks, privacy settings that cannot work, a SecAgg+ resume.
        fedsim.simulation.run.SimulationError: stopped before its last round, or no client ever trained.
    """
    start, earlier_s = time.perf_counter(), resume.wall_s if resume is not None else 0.0
    wall_s = lambda: earlier_s + time.perf_counter() - start  # noqa: E731 - the run's clock, resumed
    quiet_logging(verbose)
    spec = build_run_spec(scenario)  # 1
    backend = backend_config(spec.simulation, verbose=verbose)
    data = prepare_data(spec, resume=resume)  # 2
    try:  # 3
        privacy = create_run_privacy(round_planner(spec), sizes=data.sizes, stopping=spec.stopping)
    except PrivacySetupError as err:
        raise ConfigurationError(str(err)) from err
    session = _create_session(scenario, spec, data=data, privacy=privacy, on_round=on_round)  # 4
    if resume is not None:
        session.load_state_dict(resume.state)
    if run_dir is not None and not spec.federation.secure_aggregation:  # SecAgg+ runs cannot resume
        _write_checkpoints(session, run_dir, scenario=scenario.to_toml_dict(), wall_s=wall_s)
    offset = resume.round if resume is not None else None
    simulate(  # 5
        spec,
        session=session,
        initial_state=data.model.state_dict(),
        backend=backend,
        round_offset=offset or 0,
        resuming=offset is not None,
        verbose=verbose,
        flower_run=flower_run,
    )
    session.recorder.finish()
    return _result(scenario, spec, session=session, data=data, wall_s=wall_s, resumed_from_round=offset)  # 6


def rebuilt_client_task(scenario: Scenario) -> ClientTask:
    """The ClientTask a run hands its ClientApps, rebuilt from the scenario alone.

    A ``flwr run`` worker has only the scenario; the driver of the same run builds
    the same task (:func:`fedsim.simulation.run.client_task`) from the same seeded
    plans: the Dirac canaries from the model's shapes, the input canaries from the test set.
    """
    spec = build_run_spec(scenario)
    train_set, test_set = load_dataset(spec.data)
    model = initial_model(spec, train_set)
    observer = _canary_observer(spec, model)
    inputs, _ = _input_canaries(spec, test_set)
    return client_task(spec, observer.canaries if observer is not None else None, inputs)


def _create_session(
    scenario: Scenario, spec: RunSpec, *, data: Prepared, privacy: RunPrivacy, on_round
) -> RunSession:
    """The run's session: round records on the test set, the privacy accounting and the canaries."""
    return RunSession(
        recorder=RoundRecorder(
            test_set=data.test_set,
            model=data.model,
            device=get_device(),
            round_test_set=spec.evaluation.round_subset(data.test_set, spec.seed),
            last_round=spec.federation.rounds,
        ),
        privacy=privacy,
        on_round=on_round or (lambda record: None),
        canaries=_canary_observer(spec, data.model),
        input_canaries=data.input_canaries,
    )


def _canary_observer(spec: RunSpec, model: torch.nn.Module) -> CanaryObserver | None:
    """The run's Dirac canaries, planned over ``model``'s weights, and their server-side observer (or None).

    The canary gradient is ``audit.canary-norm``; by default the clipping norm under
    DP-SGD, else :data:`fedsim.audit.spec.NO_DP_CANARY_NORM`.
    """
    audit, privacy = spec.audit, spec.privacy
    if not (audit.enabled and audit.canaries):
        return None
    canaries = plan_dirac_canaries(
        audit.canaries,
        shapes={name: tuple(p.shape) for name, p in model.named_parameters()},
        num_clients=spec.federation.num_clients,
        norm=audit.canary_norm or (privacy.max_grad_norm if privacy.is_sample_level else NO_DP_CANARY_NORM),
        seed=spec.seed,
    )
    return CanaryObserver(canaries)


def _write_checkpoints(
    session: RunSession, run_dir: Path, *, scenario: dict, wall_s: Callable[[], float]
) -> None:
    """Have ``session`` write the run's progress and checkpoint to ``run_dir`` after every round."""
    session.on_checkpoint = lambda state, arrays: write_checkpoint(
        run_dir, Checkpoint(scenario, state, arrays, wall_s())
    )


def _result(
    scenario: Scenario,
    spec: RunSpec,
    *,
    session: RunSession,
    data: Prepared,
    wall_s: Callable[[], float],
    resumed_from_round: int | None,
) -> RunResult:
    """The finished run: client records, the audit and typed summary, the rounds and the label counts."""
    clients = client_records(spec, session, sizes=data.sizes)
    summary = build_summary(
        spec,
        session=session,
        data=data,
        clients=clients,
        wall_s=wall_s,
        resumed_from_round=resumed_from_round,
    )
    return RunResult(
        summary=summary,
        rounds=session.recorder.rounds,
        clients=clients,
        scenario=scenario.to_toml_dict(),
        label_counts=partition_stats(
            data.train_set.y, list(data.parts), num_classes=data.train_set.num_classes
        ).tolist(),
    )
