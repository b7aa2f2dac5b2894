"""fedsim benchmarks: ratios measured side by side in one run.

    .venv/bin/python -m bench.run            # all benchmarks (about 3 minutes on 2 cores)
    .venv/bin/python -m bench.run --only dp  # one of: framework, dp, secagg

(a) framework: the same small DP job (Fashion-MNIST, 4 clients, 4 rounds) through
    Flower + Ray (`run_scenario`) and through an in-process loop that calls the
    same client-training function (`run_client_round`) and averages the weights
    with the same example weights. Ratio of wall times, whole run and per round
    after the first.
(b) dp: one DP-SGD step (Opacus, each grad-sample mode: ghost, hooks,
    functorch) against one non-private SGD step, for the CNN and the LSTM on
    256 Fashion-MNIST images and for the LSTM on 64 KJV windows of 80
    characters; median of repeated steps after warm-up.
(c) secagg: the same DP job as (a) through Flower + Ray, with and without
    SecAgg+ secure aggregation (privacy.secure-aggregation); ratio of the median
    round time after the first, and the accuracy of both.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import torch
from torch import nn

warnings.filterwarnings("ignore")

JOB = [
    "data.dataset=fashion-mnist",
    "federation.num-clients=4",
    "federation.rounds=4",
    "federation.local-steps=5",
    "federation.batch-size=256",
    "federation.learning-rate=1.0",
    "privacy.target-epsilon=3.0",
]


def in_process_fedavg(specs) -> tuple[float, list[float], float]:
    """FedAvg in one process over `run_client_round`; returns (wall, per-round walls, accuracy)."""
    from fedsim.client import evaluate
    from fedsim.data import load_dataset
    from fedsim.models import build_model
    from fedsim.simulation.client_app import client_partitions, get_device, run_client_round

    start = time.perf_counter()
    train_set, test_set = load_dataset(specs.data)
    client_partitions(specs.data, specs.partition)
    model = build_model(
        specs.model, input_shape=train_set.input_shape, num_classes=train_set.num_classes, seed=specs.seed
    )
    state = model.state_dict()
    rounds, acc = [], 0.0
    for server_round in range(1, specs.federation.rounds + 1):
        t0 = time.perf_counter()
        results = [
            run_client_round(specs, partition_id=pid, server_round=server_round, state_dict=state)
            for pid in range(specs.federation.num_clients)
        ]
        weights = np.array([m["num-examples"] for _, m in results], dtype=np.float64)
        weights /= weights.sum()
        state = {k: sum(w * sd[k] for w, (sd, _) in zip(weights, results, strict=True)) for k in state}
        model.load_state_dict(state)
        acc = evaluate(model, test_set, device=get_device()).accuracy
        rounds.append(time.perf_counter() - t0)
    return time.perf_counter() - start, rounds, acc


def framework_overhead() -> list[tuple[str, str, str]]:
    from fedsim.simulation.run import run_scenario
    from fedsim.simulation.scenario import load_scenario

    scenario = load_scenario(
        "scenarios/quickstart.toml", JOB + ["federation.strategy=fedavg", "federation.server-momentum=0.0"]
    )
    # Same total parallelism: the in-process loop uses all cores for one client at a time,
    # the simulation runs one client per core.
    t0 = time.perf_counter()
    result = run_scenario(scenario)
    flower_wall = time.perf_counter() - t0
    flower_rounds = [r.round_s for r in result.rounds[1:]]
    local_wall, local_rounds, local_acc = in_process_fedavg(scenario.specs())
    f_steady, l_steady = statistics.median(flower_rounds[1:]), statistics.median(local_rounds[1:])
    return [
        ("job", "Fashion-MNIST, CNN, 4 clients x 4 rounds, 5 DP-SGD steps of 256 each", ""),
        (
            "Flower + Ray wall (s)",
            f"{flower_wall:.1f}",
            f"accuracy {100 * result.summary['final_accuracy']:.1f} %",
        ),
        (
            "in-process loop wall (s)",
            f"{local_wall:.1f}",
            f"accuracy {100 * local_acc:.1f} % (data already cached)",
        ),
        ("ratio, whole run", f"{flower_wall / local_wall:.2f}", "Ray start-up included"),
        ("Flower + Ray round, median of rounds 2+ (s)", f"{f_steady:.2f}", ""),
        ("in-process round, median of rounds 2+ (s)", f"{l_steady:.2f}", ""),
        ("ratio, per round", f"{f_steady / l_steady:.2f}", "2 Ray workers x 1 CPU vs 1 process x 2 threads"),
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


def _dp_case(model_name: str, data, batch: int, repeats: int) -> list[tuple[str, str, str]]:
    """One model: a non-private step, then a DP-SGD step per grad-sample mode, and their ratios."""
    from fedsim.client import create_data_loader
    from fedsim.models import ModelSpec, build_model
    from fedsim.privacy import make_private, make_trainable

    x = torch.from_numpy(np.array(data.x[:batch]))
    y = torch.from_numpy(np.array(data.y[:batch]))

    def new_model():
        return build_model(
            ModelSpec(model_name),
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

    def dp_step_fn(mode):
        model = make_trainable(new_model())  # the LSTM becomes Opacus's DPLSTM
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
    for mode in ("ghost", "hooks", "functorch"):
        try:
            t = time_steps(dp_step_fn(mode), repeats)
        except Exception as err:  # noqa: BLE001 - a mode Opacus does not support for this model
            rows.append((f"{label}: DP-SGD step, {mode}", "n/a", f"{type(err).__name__}: {str(err)[:60]}"))
            continue
        rows.append((f"{label}: DP-SGD step, {mode} (ms)", f"{1000 * t:.1f}", f"{batch / t:.0f} samples/s"))
        rows.append((f"{label}: ratio DP ({mode}) / non-private", f"{t / plain:.2f}", ""))
    return rows


def secagg_cost() -> list[tuple[str, str, str]]:
    from fedsim.simulation.run import run_scenario
    from fedsim.simulation.scenario import load_scenario

    base = JOB + ["federation.strategy=fedavg", "federation.server-momentum=0.0"]
    runs = {}
    for label, extra in (("plain", []), ("SecAgg+", ["privacy.secure-aggregation=true"])):
        result = run_scenario(load_scenario("scenarios/quickstart.toml", base + extra))
        runs[label] = (
            statistics.median(r.round_s for r in result.rounds[2:]),
            result.summary["final_accuracy"],
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

    fashion, _ = load_dataset(DataSpec("fashion-mnist"))
    kjv, _ = load_dataset(
        DataSpec("kjv", window_length=80, window_stride=20, test_fraction=0.1, max_train_windows_per_user=100)
    )
    return (
        _dp_case("cnn", fashion, 256, repeats)
        + _dp_case("lstm", fashion, 256, max(3, repeats // 3))
        + _dp_case("lstm", kjv, 64, max(3, repeats // 3))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["framework", "dp", "secagg"])
    args = parser.parse_args()
    from rich.console import Console
    from rich.table import Table

    console = Console(width=130)
    console.print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CUDA {torch.cuda.is_available()}"
    )
    sections = {
        "dp": ("(b) DP-SGD step vs non-private step, per grad-sample mode (CNN, LSTM)", dp_step_cost),
        "framework": ("(a) Flower + Ray vs in-process loop (same client function)", framework_overhead),
        "secagg": ("(c) SecAgg+ vs plain aggregation (same job through Flower + Ray)", secagg_cost),
    }
    for key in ["dp", "framework", "secagg"]:
        if args.only and key != args.only:
            continue
        title, fn = sections[key]
        table = Table(title=title, title_justify="left")
        for col in ("measure", "value", "note"):
            table.add_column(col)
        for row in fn():
            table.add_row(*row)
        console.print(table)


if __name__ == "__main__":
    main()
