"""Client failures injected on purpose (the ``[faults]`` section), to test that runs survive them.

Whether client ``k`` fails in round ``t`` is drawn from a generator seeded by
``(seed, k, t)``, so the same clients fail in a rerun and in a resumed run.
A failure happens before the client touches its data, so it costs no ε.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

FAULT_KINDS = ("exception", "hang", "crash")
"""``exception``: the ClientApp raises; ``hang``: it sleeps past the round timeout, then raises;
``crash``: its Ray worker process exits (as if killed)."""

_FAULT_STREAM = 0x6661756C


class InjectedFault(RuntimeError):
    """The failure a ``[faults]`` section asked for (never a bug)."""


@dataclass(frozen=True)
class FaultSpec:
    """Injected client failures.

    Args:
        rate: probability that a sampled client fails in a round, in ``[0, 1]``.
        kind: one of :data:`FAULT_KINDS`.
        hang_s: seconds a ``hang`` fault sleeps (longer than the round timeout).
        seed: the run's seed.

    Raises:
        ValueError: for a rate outside ``[0, 1]`` or an unknown kind.

    Example:
        >>> spec = FaultSpec(rate=0.5, kind="exception", hang_s=0.0, seed=0)
        >>> [spec.fault(k, 1) for k in range(4)] == [spec.fault(k, 1) for k in range(4)]
        True
        >>> FaultSpec(rate=0.0, kind="exception", hang_s=0.0, seed=0).fault(0, 1) is None
        True
    """

    rate: float
    kind: str
    hang_s: float
    seed: int

    def __post_init__(self) -> None:
        if not 0 <= self.rate <= 1 or self.kind not in FAULT_KINDS:
            raise ValueError(f"rate must be in [0, 1] and kind one of {FAULT_KINDS}")

    def fault(self, partition_id: int, server_round: int) -> str | None:
        """The fault client ``partition_id`` suffers in ``server_round``, or None."""
        if self.rate <= 0:
            return None
        seq = np.random.SeedSequence([self.seed, partition_id, server_round, _FAULT_STREAM])
        return self.kind if np.random.default_rng(seq).random() < self.rate else None


def inject_fault(spec: FaultSpec, *, partition_id: int, server_round: int) -> None:
    """Fail as ``spec`` says for this client and round; return at once if it does not fail.

    Args:
        spec: the scenario's faults.
        partition_id: the client.
        server_round: the round, from 1.

    Raises:
        InjectedFault: for ``exception``, and for ``hang`` after sleeping ``hang_s``.
    """
    kind = spec.fault(partition_id, server_round)
    if kind is None:
        return
    if kind == "crash":
        os._exit(70)  # the worker process dies mid-task, as when it is killed
    if kind == "hang":
        time.sleep(spec.hang_s)
    raise InjectedFault(f"injected {kind} fault: client {partition_id}, round {server_round}")
