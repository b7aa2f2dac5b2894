"""fedsim benchmarks: ratios measured side by side in one run, each figure beside its target.

    .venv/bin/python -m bench.run                 # figures 1-4 (about 15 minutes on 2 cores)
    .venv/bin/python -m bench.run --only dp       # one section (see SECTIONS), e.g. dp, canaries, profile
    bash bench/gpu_check.sh                       # figure 4, on a machine with an NVIDIA GPU

(1) framework: the same 50-round DP job (Fashion-MNIST, CNN, 4 clients) through
    Flower + Ray (`run_scenario`) and through an in-process loop that calls the
    same client-training function (`run_client_round`), averages the weights
    with the same example weights and evaluates the same way. Target: whole-run
    wall-time ratio <= 1.15.
(2) dp: one DP-SGD step (Opacus, each grad-sample mode: ghost, hooks,
    functorch) against one non-private SGD step, for the CNN and the LSTM on
    256 Fashion-MNIST images and for the LSTM on 64 KJV windows of 80
    characters; median of repeated steps after warm-up. The non-private LSTM
    is PyTorch's fused nn.LSTM; under DP it becomes fedsim's FastDPLSTM
    (privacy.dp-lstm = "fast") or Opacus's DPLSTM ("opacus"), both measured.
    Targets: CNN (the default ghost clipping) <= 2.0; LSTM (fast layer,
    hooks, the LSTM scenarios' mode) <= 3.0.
(3) many: 10,000 registered clients (6 Fashion-MNIST images each), 100 sampled
    per round, 50 rounds, DP-SGD: the driver's resident memory after round 50
    over after round 5 (target <= 1.05), its peak, and the time per round.
(4) gpu: only whether CUDA is visible here; bench/gpu_check.sh measures
    clients sharing a GPU (resources.client-gpus) on a machine with one.
(extra) secagg: the same small DP job through Flower + Ray with and without
    SecAgg+ (privacy.secure-aggregation); ratio of the median round time.
(extra) canaries: what the white-box canary audit costs a quickstart client
    round (1,000 Dirac canaries spread over its 10 clients, added to each
    DP-SGD step) and the server (what the round's 10 updates did at the
    canaries' coordinates); rounds with and without canaries alternate in one
    process. Target: client round with canaries / without <= 1.05.
(7) profile: where one round's time goes, for the quickstart (CNN) and
    fashion-lstm (LSTM): one client round timed by phase (forward, backward
    with per-sample gradients, clipping, noise, the rest) in one thread, and a
    4-round run timed in the driver (evaluation, checkpoint); the remainder of
    the round is Flower and Ray messaging and contention.

The process re-executes itself under the glibc malloc settings fedsim gives
its Ray workers (`fedsim.simulation.run.WORKER_MALLOC_ENV`), so both sides of
every ratio run under the same allocator.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from fedsim.simulation.spec import RunSpec
from torch import nn

warnings.filterwarnings("ignore")
START_ENV = dict(os.environ)  # before fedsim's import sets its defaults

JOB = [
    "data.dataset=fashion-mnist",
    "federation.num-clients=4",
    "federation.rounds=4",
    "federation.local-steps=5",
    "federation.batch-size=256",
    "federation.learning-rate=1.0",
    "privacy.target-epsilon=3.0",
]


def in_process_fedavg(spec: RunSpec) -> tuple[float, list[float], float]:
    """FedAvg in one process over `run_client_round`; returns (wall, per-round walls, accuracy)."""
    from fedsim.client import evaluate
    from fedsim.data import load_dataset
    from fedsim.models import build_model
    from fedsim.simulation.client_app import get_device, run_client_round
    from fedsim.simulation.run import client_task
    from fedsim.simulation.shards import client_partitions, client_shard

    task = client_task(spec)

    for cached in (load_dataset, client_partitions, client_shard):  # load the data like a fresh worker
        cached.cache_clear()
    start = time.perf_counter()
    train_set, test_set = load_dataset(spec.data)
    client_partitions(spec.data, spec.partition)
    model = build_model(
        spec.model, input_shape=train_set.input_shape, num_classes=train_set.num_classes, seed=spec.seed
    )
    state = model.state_dict()
    round_test_set = spec.evaluation.round_subset(test_set, spec.seed)
    rounds, acc = [], 0.0
    for server_round in range(1, spec.federation.rounds + 1):
        t0 = time.perf_counter()
        results = [
            run_client_round(task, partition_id=pid, server_round=server_round, state_dict=state)
            for pid in range(spec.federation.num_clients)
        ]
        weights = np.array([m["num-examples"] for _, m in results], dtype=np.float64)
        weights /= weights.sum()
        state = {k: sum(w * sd[k] for w, (sd, _) in zip(weights, results, strict=True)) for k in state}
        model.load_state_dict(state)
        last = server_round == spec.federation.rounds  # the same evaluation as the simulation's
        acc = evaluate(model, test_set if last else round_test_set, device=get_device()).accuracy
        rounds.append(time.perf_counter() - t0)
    return time.perf_counter() - start, rounds, acc


FRAMEWORK_JOB = [
    "data.dataset=fashion-mnist",
    "federation.num-clients=4",
    "federation.rounds=50",
    "federation.local-steps=10",
    "federation.batch-size=64",
    "federation.learning-rate=0.5",
    "federation.strategy=fedavg",
    "federation.server-momentum=0.0",
    "privacy.target-epsilon=3.0",
    "audit.enabled=false",
]
FRAMEWORK_TARGET = 1.15


def framework_overhead() -> list[tuple[str, str, str]]:
    """(1) The same 50-round job through Flower + Ray and through the in-process loop."""
    from fedsim.commands.run import run_scenario
    from fedsim.scenario import build_run_spec, load_scenario

    scenario = load_scenario("scenarios/quickstart.toml", FRAMEWORK_JOB)
    # Same total parallelism: the in-process loop uses both cores for one client at a time
    # (2 torch threads), the simulation runs one client per core (2 Ray actors x 1 CPU).
    t0 = time.perf_counter()
    result = run_scenario(scenario)
    flower_wall = time.perf_counter() - t0
    flower_rounds = [r.round_s for r in result.rounds[1:]]
    local_wall, local_rounds, local_acc = in_process_fedavg(build_run_spec(scenario))
    f_steady, l_steady = statistics.median(flower_rounds[1:]), statistics.median(local_rounds[1:])
    start_up = flower_wall - sum(flower_rounds)
    return [
        ("job", "Fashion-MNIST, CNN, 4 clients x 50 rounds, 10 DP-SGD steps of 64 each (ε 3)", ""),
        (
            "Flower + Ray wall (s)",
            f"{flower_wall:.1f}",
            f"accuracy {100 * result.summary.final_accuracy:.1f} %",
        ),
        ("  of which start-up before round 1 (s)", f"{start_up:.1f}", "Ray, actors, node registry, data"),
        (
            "in-process loop wall (s)",
            f"{local_wall:.1f}",
            f"accuracy {100 * local_acc:.1f} % (data loaded at its start)",
        ),
        ("Flower + Ray round, median of rounds 2+ (s)", f"{f_steady:.2f}", ""),
        ("in-process round, median of rounds 2+ (s)", f"{l_steady:.2f}", ""),
        ("ratio per round", f"{f_steady / l_steady:.2f}", "2 Ray actors x 1 CPU vs 1 process x 2 threads"),
        (
            "FIGURE 1: ratio, whole 50-round run",
            f"{flower_wall / local_wall:.2f}",
            _verdict(flower_wall / local_wall, FRAMEWORK_TARGET),
        ),
    ]


def _verdict(value: float, target: float) -> str:
    return f"target <= {target:g}: {'met' if value <= target else 'NOT met'}"


def _rss_mib() -> float:
    """This process's resident set size now (Linux /proc), MiB."""
    for line in open("/proc/self/status", encoding="ascii"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


MANY_JOB = [
    "data.dataset=fashion-mnist",
    "federation.num-clients=10000",
    "federation.fraction-train=0.01",
    "federation.rounds=50",
    "federation.local-steps=1",
    "federation.batch-size=4",
    "federation.strategy=fedavg",
    "federation.server-momentum=0.0",
    "privacy.target-epsilon=8.0",
    "audit.enabled=false",
]
MANY_TARGET = 1.05


def many_clients() -> list[tuple[str, str, str]]:
    """(3) 10,000 registered clients, 100 per round, 50 rounds: driver memory and time per round."""
    import resource

    from fedsim.commands.run import run_scenario
    from fedsim.scenario import load_scenario

    rss: dict[int, float] = {}
    t0 = time.perf_counter()
    result = run_scenario(
        load_scenario("scenarios/quickstart.toml", MANY_JOB),
        on_round=lambda r: rss.setdefault(r.round, _rss_mib()),
    )
    wall = time.perf_counter() - t0
    rounds = [r.round_s for r in result.rounds[1:]]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ratio = rss[50] / rss[5]
    trained = sum(c.rounds_trained > 0 for c in result.clients)
    return [
        (
            "job",
            "Fashion-MNIST (6 examples per client), CNN, 10,000 clients, 100 per round, 50 rounds, DP ε 8",
            "",
        ),
        ("driver RSS after round 5 / round 50 (MiB)", f"{rss[5]:.0f} / {rss[50]:.0f}", ""),
        ("FIGURE 3: RSS(round 50) / RSS(round 5)", f"{ratio:.3f}", _verdict(ratio, MANY_TARGET)),
        ("driver peak RSS (MiB)", f"{peak:.0f}", "ru_maxrss of the driver process"),
        (
            "time per round, median (s)",
            f"{statistics.median(rounds):.2f}",
            f"min {min(rounds):.2f}, max {max(rounds):.2f}",
        ),
        ("wall (s)", f"{wall:.0f}", f"start-up before round 1: {wall - sum(rounds):.0f} s"),
        ("clients that trained", f"{trained}", f"ε_max {result.summary.privacy.epsilon_max:.3f}"),
        ("final accuracy", f"{100 * result.summary.final_accuracy:.1f} %", ""),
    ]


def time_steps(step, repeats: int) -> float:
    for _ in range(3):
        step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _dp_case(
    model_name: str, data, batch: int, repeats: int, layers: tuple[str, ...] = ("fast",)
) -> list[tuple[str, str, str]]:
    """One model: a non-private step, then a DP-SGD step per grad-sample mode and DP LSTM layer; ratios."""
    from fedsim.client import create_data_loader
    from fedsim.models import ModelSpec, build_model
    from fedsim.privacy import make_private, make_trainable

    x = torch.from_numpy(np.array(data.x[:batch]))
    y = torch.from_numpy(np.array(data.y[:batch]))

    def new_model():
        return build_model(
            ModelSpec(model_name, activation="relu"),
            input_shape=data.input_shape,
            num_classes=data.num_classes,
            vocab_size=data.vocab_size,
            seed=0,
        )

    def plain_step_fn():
        model = new_model()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        loss_fn = nn.CrossEntropyLoss()

        def step():
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()

        return step

    def dp_step_fn(mode, layer):
        model = make_trainable(new_model(), layer)  # nn.LSTM becomes FastDPLSTM or Opacus's DPLSTM
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        loader = create_data_loader(data.subset(np.arange(batch * 4)), batch_size=batch, shuffle=False)
        private = make_private(
            module=model,
            optimizer=opt,
            criterion=nn.CrossEntropyLoss(),
            data_loader=loader,
            noise_multiplier=1.0,
            max_grad_norm=1.0,
            grad_sample_mode=mode,
        )

        def step():
            private.optimizer.zero_grad()
            private.criterion(private.module(x), y).backward()
            private.optimizer.step()

        return step

    label = f"{model_name} on {data.name}, batch {batch}"
    plain = time_steps(plain_step_fn(), repeats)
    rows = [(f"{label}: non-private step (ms)", f"{1000 * plain:.1f}", f"{batch / plain:.0f} samples/s")]
    for layer in layers:
        for mode in MODES:
            name = mode if model_name == "cnn" else f"{mode}, {layer} LSTM"
            try:
                t = time_steps(dp_step_fn(mode, layer), repeats if layer == "fast" else max(3, repeats // 3))
            except Exception as err:  # noqa: BLE001 - a mode Opacus does not support for this model
                rows.append(
                    (f"{label}: DP-SGD step, {name}", "n/a", f"{type(err).__name__}: {str(err)[:60]}")
                )
                continue
            rows.append(
                (f"{label}: DP-SGD step, {name} (ms)", f"{1000 * t:.1f}", f"{batch / t:.0f} samples/s")
            )
            rows.append((f"{label}: ratio DP ({name}) / non-private", f"{t / plain:.2f}", ""))
            figure = FIGURES_DP.get((model_name, data.name, layer, mode))
            if figure:
                target = DP_TARGETS[model_name]
                rows.append((figure, f"{t / plain:.2f}", _verdict(t / plain, target)))
    return rows


MODES = ("ghost", "hooks", "functorch")
DP_TARGETS = {"cnn": 2.0, "lstm": 3.0}
FIGURES_DP = {  # privacy.grad-sample-mode's default for the CNN; the LSTM scenarios' hooks
    ("cnn", "fashion-mnist", "fast", "ghost"): "FIGURE 2: DP-SGD step / non-private step, CNN, CPU",
    (
        "lstm",
        "fashion-mnist",
        "fast",
        "hooks",
    ): "FIGURE 2b: DP-SGD step / non-private step, LSTM, Fashion-MNIST",
    ("lstm", "kjv", "fast", "hooks"): "FIGURE 2c: DP-SGD step / non-private step, LSTM, KJV text",
}


def secagg_cost() -> list[tuple[str, str, str]]:
    from fedsim.commands.run import run_scenario
    from fedsim.scenario import load_scenario

    base = JOB + ["federation.strategy=fedavg", "federation.server-momentum=0.0"]
    runs = {}
    for label, extra in (("plain", []), ("SecAgg+", ["privacy.secure-aggregation=true"])):
        result = run_scenario(load_scenario("scenarios/quickstart.toml", base + extra))
        runs[label] = (
            statistics.median(r.round_s for r in result.rounds[2:]),
            result.summary.final_accuracy,
        )
    (plain, plain_acc), (secure, secure_acc) = runs["plain"], runs["SecAgg+"]
    return [
        ("job", "as (a), through Flower + Ray, with and without SecAgg+", ""),
        ("plain round, median of rounds 2+ (s)", f"{plain:.2f}", f"accuracy {100 * plain_acc:.1f} %"),
        ("SecAgg+ round, median of rounds 2+ (s)", f"{secure:.2f}", f"accuracy {100 * secure_acc:.1f} %"),
        ("ratio, per round", f"{secure / plain:.2f}", "4 protocol stages, masks, quantisation"),
    ]


def dp_step_cost(repeats: int = 15) -> list[tuple[str, str, str]]:
    from fedsim.data import DataSpec, load_dataset

    unused = dict.fromkeys(f.name for f in fields(DataSpec)[1:])  # every option None: no defaults
    fashion, _ = load_dataset(DataSpec("fashion-mnist", **unused))
    text = dict(window_length=80, window_stride=20, test_fraction=0.1, max_train_windows_per_user=100)
    kjv, _ = load_dataset(DataSpec("kjv", **(unused | text)))
    return (
        _dp_case("cnn", fashion, 256, repeats)
        + _dp_case("lstm", fashion, 256, repeats, ("fast", "opacus"))
        + _dp_case("lstm", kjv, 64, repeats, ("fast", "opacus"))
    )


PROFILE_CASES = {
    "quickstart": ("scenarios/quickstart.toml", []),
    "fashion-lstm": ("scenarios/fashion-lstm.toml", []),
}


def _timed(clock: dict[str, list[float]], name: str, fn):
    """``fn``, also appending each call's wall time (s) to ``clock[name]``."""

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            clock.setdefault(name, []).append(time.perf_counter() - t0)

    return wrapper


def _client_phases(scenario_file: str, rounds: int = 3) -> dict[str, float]:
    """Seconds per phase of one client round (median over ``rounds``), in this process, one thread.

    Phases: forward; backward (with Opacus's per-sample gradients, or under ghost
    clipping their norms and the second, clipped backward); clipping and
    accumulation of per-sample gradients (hooks and functorch modes); noise;
    the rest of the step (the SGD update, data loading, Poisson sampling);
    and the round's set-up outside the steps (model, Opacus wrapping, loader).
    """
    import fedsim.simulation.client_app as client_app
    import fedsim.simulation.shards as shards
    from fedsim.models import build_model
    from fedsim.scenario import build_run_spec, load_scenario
    from fedsim.simulation.run import client_task

    spec = build_run_spec(load_scenario(scenario_file, []))
    task = client_task(spec)
    shard = shards.client_shard(task.data, task.partition, 0)
    state = build_model(
        spec.model, input_shape=shard.input_shape, num_classes=shard.num_classes, vocab_size=shard.vocab_size
    ).state_dict()
    clock: dict[str, list[float]] = {}

    def timed(name, fn):
        return _timed(clock, name, fn)

    original_train = client_app.train

    def train(model, loader, *, optimizer, criterion, **kwargs):
        model.forward = timed("forward", model.forward)
        for name in ("clip_and_accumulate", "add_noise"):
            if hasattr(optimizer, name):
                setattr(optimizer, name, timed(name, getattr(optimizer, name)))
        loss_backward = torch.Tensor.backward
        torch.Tensor.backward = timed("backward", loss_backward)
        try:
            return timed("steps", original_train)(
                model, loader, optimizer=optimizer, criterion=criterion, **kwargs
            )
        finally:
            torch.Tensor.backward = loss_backward

    client_app.train = train
    samples: list[dict[str, float]] = []
    threads = torch.get_num_threads()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.set_num_threads(1)  # a Ray actor's one CPU
            for r in range(rounds + 1):
                clock.clear()
                t0 = time.perf_counter()
                client_app.run_client_round(task, partition_id=0, server_round=r + 1, state_dict=state)
                clock["round"] = [time.perf_counter() - t0]
                if r:  # the first round loads the data
                    samples.append({k: sum(v) for k, v in clock.items()})
    finally:
        torch.set_num_threads(threads)
        client_app.train = original_train
    return {k: statistics.median(s.get(k, 0.0) for s in samples) for k in samples[0]}


def canary_cost(rounds: int = 6) -> list[tuple[str, str, str]]:
    """The Dirac canaries' cost in a quickstart client round and in the server's round (section docstring)."""
    from dataclasses import replace

    import fedsim.simulation.client_app as client_app
    import fedsim.simulation.shards as shards
    from fedsim.audit.canaries import CanaryObserver, plan_dirac_canaries
    from fedsim.models import build_model
    from fedsim.scenario import build_run_spec, load_scenario
    from fedsim.simulation.run import client_task

    spec = build_run_spec(load_scenario("scenarios/quickstart.toml", []))
    task = client_task(spec)
    shard = shards.client_shard(task.data, task.partition, 0)
    model = build_model(spec.model, input_shape=shard.input_shape, num_classes=shard.num_classes)
    state = model.state_dict()
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    canaries = plan_dirac_canaries(1000, shapes=shapes, num_clients=10, norm=1.0, seed=0)
    tasks = {"without": task, "with": replace(task, canaries=canaries)}
    times: dict[str, list[float]] = {"without": [], "with": []}
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # a Ray actor's one CPU
        for r in range(rounds + 1):
            for name, t in tasks.items():
                t0 = time.perf_counter()
                new_state, _ = client_app.run_client_round(
                    t, partition_id=0, server_round=r + 1, state_dict=state
                )
                if r:  # the first round loads the data
                    times[name].append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
    arrays = {k: v.numpy() for k, v in new_state.items()}
    observer = CanaryObserver(canaries)
    t0 = time.perf_counter()
    observer.observe(arrays, dict.fromkeys(range(10), arrays), arrays)
    observe_s = time.perf_counter() - t0
    with_s, without_s = statistics.median(times["with"]), statistics.median(times["without"])
    ratio = with_s / without_s
    return [
        ("client round without canaries (s, median)", f"{without_s:.3f}", f"{rounds} rounds, one thread"),
        (
            "client round with its canaries (s, median)",
            f"{with_s:.3f}",
            f"{len(canaries.held_by(0))} canaries in",
        ),
        ("server: one round's 10 updates at 1,000 coordinates (s)", f"{observe_s:.4f}", "in the driver"),
        ("FIGURE 5: client round with canaries / without", f"{ratio:.3f}", _verdict(ratio, 1.05)),
    ]


def _run_phases(scenario_file: str, rounds: int) -> dict[str, float]:
    """Seconds per round (median of rounds 2+) of a real run: the round, evaluation, checkpoint."""
    import fedsim.commands.run as run_command
    import fedsim.simulation.recorder as recorder
    from fedsim.scenario import load_scenario

    clock: dict[str, list[float]] = {"evaluation": [], "checkpoint": []}

    def timed(name, fn):
        return _timed(clock, name, fn)

    evaluate, write = recorder.evaluate, run_command.write_checkpoint
    recorder.evaluate, run_command.write_checkpoint = (
        timed("evaluation", evaluate),
        timed("checkpoint", write),
    )
    try:
        with tempfile.TemporaryDirectory() as run_dir:  # a run writes its progress and checkpoint each round
            result = run_command.run_scenario(
                load_scenario(scenario_file, [f"federation.rounds={rounds}", "audit.enabled=false"]),
                run_dir=Path(run_dir),
            )
    finally:
        recorder.evaluate, run_command.write_checkpoint = evaluate, write
    return {
        "round": statistics.median(r.round_s for r in result.rounds[2:]),
        "evaluation": statistics.median(clock["evaluation"][2:]),
        "checkpoint": statistics.median(clock["checkpoint"][2:]),
        "clients": result.rounds[-1].clients_trained,
    }


def profile() -> list[tuple[str, str, str]]:
    """(7) Where one round's time goes, for the quickstart (CNN) and the LSTM scenario."""
    rows = []
    for name, (scenario_file, _) in PROFILE_CASES.items():
        client = _client_phases(scenario_file)
        run = _run_phases(scenario_file, rounds=4)
        actors = 2  # one per core (resources.client-cpus = 1)
        compute = client["round"] * run["clients"] / actors
        other = run["round"] - compute
        step_rest = client["steps"] - sum(
            client.get(k, 0.0) for k in ("forward", "backward", "clip_and_accumulate", "add_noise")
        )
        parts = {
            "forward": client.get("forward", 0.0),
            "backward (per-sample gradients or norms)": client.get("backward", 0.0),
            "clipping (hooks/functorch)": client.get("clip_and_accumulate", 0.0),
            "noise": client.get("add_noise", 0.0),
            "rest of the steps (update, sampling, batches)": step_rest,
            "round set-up (model, Opacus, loader)": client["round"] - client["steps"],
        }
        rows.append(
            (
                f"{name}: round, median of rounds 2+ (s)",
                f"{run['round']:.2f}",
                f"{run['clients']} clients on {actors} actors",
            )
        )
        for part, seconds in parts.items():
            share = seconds * run["clients"] / actors / run["round"]
            rows.append(
                (
                    f"  client compute: {part}",
                    f"{100 * share:.0f} %",
                    f"{1000 * seconds:.0f} ms per client round",
                )
            )
        rows.append(
            (
                "  evaluation (driver)",
                f"{100 * run['evaluation'] / run['round']:.0f} %",
                f"{run['evaluation']:.2f} s",
            )
        )
        rows.append(
            (
                "  checkpoint (driver)",
                f"{100 * run['checkpoint'] / run['round']:.0f} %",
                f"{run['checkpoint']:.3f} s",
            )
        )
        messaging = other - run["evaluation"] - run["checkpoint"]
        rows.append(
            (
                "  the rest: Flower + Ray messaging, contention",
                f"{100 * messaging / run['round']:.0f} %",
                f"{messaging:.2f} s (round - compute on 2 actors - evaluation - checkpoint)",
            )
        )
    return rows


def gpu_note() -> list[tuple[str, str, str]]:
    """(4) GPU: measured by bench/gpu_check.sh on a machine with one; here only whether CUDA is visible."""
    if torch.cuda.is_available():
        return [
            ("FIGURE 4: GPU", "CUDA visible", "run bench/gpu_check.sh for clients per GPU and time per round")
        ]
    return [("FIGURE 4: GPU", "not measured", "no CUDA GPU on this machine; run bench/gpu_check.sh on one")]


SECTIONS = {
    "dp": ("(2) DP-SGD step vs non-private step, per grad-sample mode (CNN, LSTM)", lambda: dp_step_cost()),
    "framework": ("(1) Flower + Ray vs in-process loop, same 50-round job", framework_overhead),
    "many": ("(3) 10,000 clients, 100 per round, 50 rounds: driver memory", many_clients),
    "gpu": ("(4) GPU", gpu_note),
    "secagg": ("(extra) SecAgg+ vs plain aggregation (same job through Flower + Ray)", secagg_cost),
    "canaries": ("(extra) white-box canary audit: a quickstart client round with and without", canary_cost),
    "profile": ("(7) one round's time by phase: quickstart (CNN) and fashion-lstm (LSTM)", profile),
}
DEFAULT = ("dp", "framework", "many", "gpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append", help="repeatable")
    args = parser.parse_args()
    from fedsim.simulation.run import WORKER_MALLOC_ENV

    # The benchmark process runs under the allocator settings fedsim gives the Ray workers
    # (glibc reads them at start-up), so both sides of every ratio use the same malloc.
    if any(START_ENV.get(k) != v for k, v in WORKER_MALLOC_ENV.items()):
        env = {**os.environ, **WORKER_MALLOC_ENV}
        os.execve(sys.executable, [sys.executable, "-m", "bench.run", *sys.argv[1:]], env)
    from rich.console import Console
    from rich.table import Table

    console = Console(width=150)
    console.print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CUDA {torch.cuda.is_available()}"
    )
    figures = []
    for key in args.only or DEFAULT:
        title, fn = SECTIONS[key]
        table = Table(title=title, title_justify="left")
        for col in ("measure", "value", "note"):
            table.add_column(col)
        for row in fn():
            table.add_row(*row)
            if row[0].startswith("FIGURE"):
                figures.append(row)
        console.print(table)
    if figures:
        table = Table(title="The figures and their targets", title_justify="left")
        for col in ("figure", "value", "target"):
            table.add_column(col)
        for row in figures:
            table.add_row(*row)
        console.print(table)


if __name__ == "__main__":
    main()
