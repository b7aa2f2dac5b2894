"""Seeded cohort sampling: which clients train in a round, drawn from ``(seed, round)``.

Flower's Message-API strategies sample nodes unseeded. fedsim samples the
round's cohort by partition id from a generator seeded by the run's seed and
the round, so a run is reproducible and a resumed run samples what the
uninterrupted one would; the strategy is then shown only the cohort's nodes.

Two samplings (``federation.cohort-sampling``): ``fixed`` draws a cohort of a
fixed size without replacement (Flower's rule); ``poisson`` lets each client
join independently with probability q, so the cohort's size varies and may be
0 (the sampling that Opacus's and dp_accounting's Poisson accountants assume,
which makes user-level ε exact: McMahan et al. 2018, https://arxiv.org/abs/1710.06963).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

_COHORT_STREAM = 0x636F686F
"""Tag of the cohort's random stream (``"coho"``), kept apart from the server noise's."""

NOISE_STREAM = 0x6E6F6973
"""Tag of the server-side DP noise's random stream (``"nois"``, seeded in ``RoundHooks``)."""


def sample_cohort(seed: int, server_round: int, num_clients: int, size: int) -> list[int]:
    """The partition ids trained in ``server_round``: ``size`` of ``num_clients``, without replacement.

    Uniform sampling of a fixed-size cohort (as Flower's ``sample_nodes``), but
    drawn from a NumPy generator seeded by ``(seed, server_round)``, so a run is
    reproducible and a resumed run samples what the uninterrupted one would.

    Args:
        seed: the run's seed.
        server_round: the round, from 1.
        num_clients: registered clients (partition ids ``0 .. num_clients - 1``).
        size: clients per round (the cohort).

    Returns:
        Sorted partition ids, length ``min(size, num_clients)``.

    Example:
        >>> sample_cohort(0, 1, 10, 3) == sample_cohort(0, 1, 10, 3)
        True
        >>> len(sample_cohort(0, 1, 10, 3)), sample_cohort(0, 1, 4, 9)
        (3, [0, 1, 2, 3])
    """
    size = min(size, num_clients)
    if size == num_clients:
        return list(range(num_clients))
    rng = np.random.default_rng(np.random.SeedSequence([seed, server_round, _COHORT_STREAM]))
    return sorted(int(p) for p in rng.choice(num_clients, size=size, replace=False))


def sample_poisson_cohort(seed: int, server_round: int, num_clients: int, rate: float) -> list[int]:
    """The partition ids trained in ``server_round``: each client independently with probability ``rate``.

    Args:
        seed: the run's seed.
        server_round: the round, from 1.
        num_clients: registered clients.
        rate: q, each client's probability of joining, in ``(0, 1]``.

    Returns:
        Sorted partition ids; empty with probability ``(1 - rate) ** num_clients``.

    Example:
        >>> sample_poisson_cohort(0, 1, 10, 1.0)
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
        >>> sample_poisson_cohort(0, 1, 10, 0.3) == sample_poisson_cohort(0, 1, 10, 0.3)
        True
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, server_round, _COHORT_STREAM]))
    return [int(p) for p in np.flatnonzero(rng.random(num_clients) < rate)]


@dataclass(frozen=True)
class Cohorts:
    """Seeded cohort sampling over the federation's registered Flower nodes.

    Attributes:
        node_ids: the Flower node id of each partition id (index = partition id).
        size: clients per round (the cohort).
        seed: the run's seed, or None to draw cohorts from the operating system's
            secure generator (``secrets.SystemRandom``: under Opacus's secure
            mode, user-level ε relies on the cohort being secret, and the seed is not).
        poisson_rate: None for a fixed-size cohort of ``size``; else q, each client's
            probability of joining a round (Poisson sampling; ``size`` is then the
            expected cohort, which user-level DP divides the sum of updates by).

    Example:
        >>> cohorts = Cohorts(node_ids=(11, 12, 13), size=3, seed=0)
        >>> cohorts.nodes(1), cohorts.partition_of[12]
        ([11, 12, 13], 1)
    """

    node_ids: tuple[int, ...]
    size: int
    seed: int | None
    poisson_rate: float | None = None

    @cached_property
    def partition_of(self) -> dict[int, int]:
        """The partition id of each node id (the inverse of :attr:`node_ids`)."""
        return {node: pid for pid, node in enumerate(self.node_ids)}

    def nodes(self, server_round: int) -> list[int]:
        """The node ids of the round's cohort, by partition id.

        Args:
            server_round: the round, from 1.

        Returns:
            Node ids, ordered by partition id: ``min(size, len(node_ids))`` of them,
            or, under Poisson sampling, each node with probability ``poisson_rate`` (maybe none).
        """
        n, q = len(self.node_ids), self.poisson_rate
        if q is not None and self.seed is None:
            system = secrets.SystemRandom()
            pids = [p for p in range(n) if system.random() < q]
        elif q is not None:
            pids = sample_poisson_cohort(self.seed, server_round, n, q)
        elif self.seed is None:
            pids = sorted(secrets.SystemRandom().sample(range(n), min(self.size, n)))
        else:
            pids = sample_cohort(self.seed, server_round, n, self.size)
        return [self.node_ids[p] for p in pids]


class OnlyNodes:
    """A view of a Flower ``Grid`` whose connected nodes are just the round's cohort."""

    def __init__(self, grid, node_ids: Sequence[int]) -> None:
        self._grid, self._node_ids = grid, list(node_ids)

    def get_node_ids(self) -> list[int]:
        """The cohort's node ids (all the wrapped strategy may sample)."""
        return list(self._node_ids)

    def __getattr__(self, name: str):
        return getattr(self._grid, name)
