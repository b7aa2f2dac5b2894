"""Dirac gradient canaries: which coordinates, which coins, which clients; and what the server saw of them.

The white-box canaries of Steinke, Nasr and Jagielski 2023, "Privacy Auditing
with One (1) Training Run", https://arxiv.org/abs/2305.08846, Sec. 6: canary
``j`` is a per-example gradient that is zero except at one coordinate of the
model's weights, where it equals the clipping norm C (so clipping leaves it
whole). Before training:

1. ``m`` distinct coordinates are drawn uniformly from the elements of the
   model's weight tensors (parameters with at least 2 dimensions; biases are
   left out, their real gradients drift most);
2. each canary is included by a fair coin;
3. each canary goes to one client, drawn uniformly (its *holder*).

An included canary is one more example of its holder: in each DP-SGD step it
is sampled with the holder's Poisson rate q, and when sampled its gradient
enters the sum before noise (:mod:`fedsim.privacy.canaries`). This module is
NumPy only: the plan is pickled to the clients, and :class:`CanaryObserver`
keeps, on the server, what each round's updates did at the canaries'
coordinates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

_PLAN_STREAM = 0xCA7A
"""Seed stream of canary plans, apart from every other draw of the run's seed."""


@dataclass(frozen=True)
class DiracCanaries:
    """Where ``m`` Dirac canaries sit and which are in (small and frozen: part of every client's task).

    Attributes:
        names: per canary, the weight tensor's ``state_dict`` name, length ``m``.
        indices: per canary, the coordinate's index in that tensor flattened, length ``m``.
        included: per canary, its coin (True: trained on), length ``m``.
        holders: per canary, the client (partition id) that holds it, length ``m``.
        norm: the canary gradient's value at its coordinate (by default the clipping
            norm C under DP-SGD, which clipping leaves whole: ``audit.canary-norm``).
    """

    names: tuple[str, ...]
    indices: tuple[int, ...]
    included: tuple[bool, ...]
    holders: tuple[int, ...]
    norm: float

    @property
    def count(self) -> int:
        """``m``, the canaries planned."""
        return len(self.names)

    def included_mask(self) -> np.ndarray:
        """The coins as a bool array ``(m,)``."""
        return np.array(self.included, dtype=bool)

    def held_by(self, partition_id: int) -> tuple[tuple[str, int], ...]:
        """The ``(name, flat index)`` of every *included* canary client ``partition_id`` trains on."""
        return tuple(
            (name, index)
            for name, index, inc, holder in zip(
                self.names, self.indices, self.included, self.holders, strict=True
            )
            if inc and holder == partition_id
        )

    def values(self, state: Mapping[str, np.ndarray]) -> np.ndarray:
        """The canaries' coordinates of a model's weights, float64, shape ``(m,)``.

        Args:
            state: ``state_dict`` name -> array (NumPy, or anything ``np.asarray`` takes).
        """
        flat = {name: np.asarray(state[name]).reshape(-1) for name in set(self.names)}
        return np.array([flat[n][i] for n, i in zip(self.names, self.indices, strict=True)], dtype=np.float64)


def plan_dirac_canaries(
    count: int, *, shapes: Mapping[str, tuple[int, ...]], num_clients: int, norm: float, seed: int
) -> DiracCanaries:
    """Draw ``count`` Dirac canaries over a model's weight tensors (the module docstring's steps).

    Args:
        count: ``m`` ≥ 2.
        shapes: ``state_dict`` name -> shape of each trainable parameter; those
            with at least 2 dimensions are candidates, in the mapping's order.
        num_clients: clients to spread the canaries over (≥ 1).
        norm: the canary gradient's value (> 0).
        seed: the run's seed.

    Raises:
        ValueError: if ``count`` exceeds the weights' elements or is below 2.
    """
    weights = [(name, int(np.prod(shape))) for name, shape in shapes.items() if len(shape) >= 2]
    total = sum(size for _, size in weights)
    if not 2 <= count <= total:
        raise ValueError(f"canaries must be between 2 and the model's {total} weights, got {count}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, _PLAN_STREAM]))
    flat = np.sort(rng.choice(total, size=count, replace=False))  # (m,) into the weights concatenated
    starts = np.cumsum([0] + [size for _, size in weights])  # (W + 1,)
    tensor = np.searchsorted(starts, flat, side="right") - 1  # (m,)
    return DiracCanaries(
        names=tuple(weights[t][0] for t in tensor),
        indices=tuple(int(i) for i in flat - starts[tensor]),
        included=tuple(bool(c) for c in rng.random(count) < 0.5),
        holders=tuple(int(h) for h in rng.integers(num_clients, size=count)),
        norm=float(norm),
    )


@dataclass
class CanaryObserver:
    """What the server saw at the canaries' coordinates: the model at the start, and every round's updates.

    Each client's own update is scored: the clients add their own noise
    (sample-level DP), so each update is covered by the example-level
    guarantee (without DP there is no guarantee to cover).

    Args:
        canaries: the plan.
    """

    canaries: DiracCanaries
    initial: np.ndarray | None = None
    final: np.ndarray | None = None
    rounds: list[dict[int, np.ndarray]] = field(default_factory=list)

    def observe(
        self, global_before: Mapping, updates: Mapping[int, Mapping], global_after: Mapping | None
    ) -> None:
        """Keep one round: each trained client's change at the canaries' coordinates, and the new model.

        Args:
            global_before: the model the round's clients started from (name -> array).
            updates: partition id -> the weights that client sent back.
            global_after: the released model, or None if nothing was released.
        """
        before = self.canaries.values(global_before)  # (m,)
        if self.initial is None:
            self.initial = before
        self.rounds.append({pid: self.canaries.values(state) - before for pid, state in updates.items()})
        if global_after is not None:
            self.final = self.canaries.values(global_after)

    def scores(self) -> dict[str, np.ndarray]:
        """Each canary's score, higher = more likely included, float64 ``(m,)`` per threat model.

        * ``final``: the final model's move against the canary's gradient,
          ``-(θ_T - θ_0)[j]`` (SGD steps against the gradient);
        * ``all-rounds``: the sum, over the rounds its holder trained, of that
          client's update's move against the canary's gradient (the server sees
          each update; the other clients' updates add nothing but their noise).
        """
        m = self.canaries.count
        if self.initial is None or self.final is None:
            return {"final": np.zeros(m), "all-rounds": np.zeros(m)}
        holders = np.array(self.canaries.holders)  # (m,)
        total = np.zeros(m)
        for deltas in self.rounds:
            for pid, delta in deltas.items():
                mine = holders == pid  # (m,)
                total[mine] -= delta[mine]
        return {"final": -(self.final - self.initial), "all-rounds": total}

    def state_dict(self) -> dict:
        """Plain values for a checkpoint (``torch.load(weights_only=True)`` reads lists of floats)."""
        return {
            "initial": None if self.initial is None else self.initial.tolist(),
            "final": None if self.final is None else self.final.tolist(),
            "rounds": [{int(p): d.tolist() for p, d in r.items()} for r in self.rounds],
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (a resumed run)."""
        self.initial = None if state["initial"] is None else np.array(state["initial"])
        self.final = None if state["final"] is None else np.array(state["final"])
        self.rounds = [{int(p): np.array(d) for p, d in r.items()} for r in state["rounds"]]
