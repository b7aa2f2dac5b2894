"""A client round releases Opacus's wrapped model when it ends, in every grad-sample mode.

Opacus's ``GradSampleModule`` registers its own bound methods as hooks on the
model it wraps: a reference cycle (wrapper -> model -> layer -> hook -> wrapper)
that reference counting alone cannot free. Unless the round breaks it, each
round's wrapper, with the model, optimiser, loader and per-sample gradients it
reaches, lives on until Python's cyclic garbage collector happens to run. The
collector is off while these tests run rounds, so that it cannot hide such a cycle.
"""

import collections
import contextlib
import ctypes
import gc
from pathlib import Path

import pytest

from tests.fixtures.cli import ROOT

ROUNDS = 4
"""Client rounds in one process after a warm-up round. The warm-up fills allocator pools and
caches and runs one-time lazy imports (the first ``torch.optim.Optimizer`` imports
``torch._dynamo``, whose import leaves a cycle of frames that holds that round's locals
until the collector runs)."""

RSS_TOLERANCE_MB = 20
"""Growth of the resident set allowed over the rounds after the first (about 1 MB a round
when nothing leaks); one leaked round of the CNN under ``hooks`` or ``functorch`` at batch
256 holds about 120 MB, mostly per-sample gradients."""

CNN = ["federation.local-steps=1", "federation.batch-size=256"]
LSTM = ["model.name=lstm", "federation.local-steps=1", "federation.batch-size=32"]
CASES = [("ghost", CNN), ("hooks", CNN), ("functorch", CNN), ("hooks", LSTM), ("ghost", LSTM)]


def rss_mb() -> float:
    """This process's resident set size (Linux's ``VmRSS``), in MB, less the heap glibc keeps free.

    glibc keeps freed memory for reuse, so the raw resident set swings by tens of MB from
    round to round with no live object behind it; ``malloc_trim(0)`` hands it back first
    (with another C library, the raw resident set).
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS line in /proc/self/status")


def live_round_objects() -> collections.Counter:
    """Live Opacus wrappers, optimisers and loaders, and fedsim models, by class (no collection run)."""
    from opacus.data_loader import DPDataLoader
    from opacus.grad_sample.gsm_base import AbstractGradSampleModule
    from opacus.optimizers import DPOptimizer

    from fedsim.models import CNN, LSTMClassifier

    kinds = (AbstractGradSampleModule, DPOptimizer, DPDataLoader, CNN, LSTMClassifier)
    return collections.Counter(type(o).__name__ for o in gc.get_objects() if issubclass(type(o), kinds))


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmRSS from Linux's /proc")
@pytest.mark.parametrize(
    ("mode", "overrides"), CASES, ids=[f"{mode}-{'lstm' if o is LSTM else 'cnn'}" for mode, o in CASES]
)
def test_client_rounds_free_opacus_wrapper_and_keep_memory_flat(mode, overrides):
    from fedsim.models import build_model
    from fedsim.scenario import build_run_spec, load_scenario
    from fedsim.simulation.client_app import run_client_round
    from fedsim.simulation.run import client_task
    from fedsim.simulation.shards import client_shard

    # Arrange: the quickstart scenario (Fashion-MNIST, DP-SGD), one small step per round
    scenario = load_scenario(
        ROOT / "scenarios/quickstart.toml", [f"privacy.grad-sample-mode={mode}", *overrides]
    )
    task = client_task(build_run_spec(scenario))
    shard = client_shard(task.data, task.partition, 0)
    state = build_model(
        task.model, input_shape=shard.input_shape, num_classes=shard.num_classes, vocab_size=shard.vocab_size
    ).state_dict()
    state, _ = run_client_round(task, partition_id=0, server_round=1, state_dict=state)  # warm-up
    gc.collect()  # what the warm-up and earlier tests left; from here on only reference counting frees
    before = live_round_objects()
    live, rss, steps = [], [], []
    # Act: rounds in one process, as a Ray worker runs them, with the cyclic collector off
    gc.disable()
    try:
        for server_round in range(2, ROUNDS + 2):
            state, metrics = run_client_round(
                task, partition_id=0, server_round=server_round, state_dict=state
            )
            live.append(live_round_objects() - before)
            rss.append(round(rss_mb()))
            steps.append(metrics["steps"])
    finally:
        gc.enable()
    # Assert: no wrapper, optimiser, loader or model outlives its round; memory stays flat
    assert steps == [1] * ROUNDS
    assert live == [collections.Counter()] * ROUNDS, live
    assert max(rss[1:]) - rss[0] < RSS_TOLERANCE_MB, f"RSS per round (MB): {rss}"
