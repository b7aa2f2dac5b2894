"""Input-space canaries for the black-box one-run audit: mislabelled test examples, each in by a fair coin.

Steinke, Nasr and Jagielski 2023, "Privacy Auditing with One (1) Training
Run", https://arxiv.org/abs/2305.08846, Sec. 6 (input-space attacks): the
auditor plants ``m`` examples that the model would not fit unless trained on
them, and later sees only the final model. Here, before training:

1. ``m`` examples are drawn from the test set and **held out of evaluation**
   (the accuracy figures are on the rest of the test set);
2. each gets a label drawn uniformly from the classes other than its own (a
   mislabelled example: only training on it lowers its loss);
3. each is included by a fair coin in the training data of one client, drawn
   uniformly (its *holder*).

After training, each canary's score is minus the final global model's loss on
it (Yeom et al. 2018, https://arxiv.org/abs/1709.01604, Sec. 3); the guesses
and the bound are :func:`fedsim.audit.one_run.audit_scores`. An included canary
is an example like any other: under DP-SGD it is Poisson-sampled and clipped
with the rest, so the example-level ε covers it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from fedsim.data import ArrayDataset

_PLAN_STREAM = 0x1C4A
"""Seed stream of input-canary plans, apart from every other draw of the run's seed."""


@dataclass(frozen=True)
class InputCanaries:
    """Which test examples are canaries, their wrong labels, coins and holders (small, frozen, hashable).

    Attributes:
        indices: per canary, its row in the test set, length ``m``.
        labels: per canary, the wrong label it is trained and scored with.
        included: per canary, its coin (True: in its holder's training data).
        holders: per canary, the client (partition id) that holds it.
    """

    indices: tuple[int, ...]
    labels: tuple[int, ...]
    included: tuple[bool, ...]
    holders: tuple[int, ...]

    @property
    def count(self) -> int:
        """``m``, the canaries planned."""
        return len(self.indices)

    def included_mask(self) -> np.ndarray:
        """The coins as a bool array ``(m,)``."""
        return np.array(self.included, dtype=bool)

    def examples(self, test_set: ArrayDataset) -> ArrayDataset:
        """The ``m`` canaries with their wrong labels, in plan order."""
        canaries = test_set.subset(np.array(self.indices, dtype=np.int64))
        return replace(canaries, y=np.array(self.labels, dtype=np.int64))

    def held_by(self, partition_id: int, test_set: ArrayDataset) -> ArrayDataset | None:
        """The included canaries client ``partition_id`` trains on (None if it holds none)."""
        mine = np.flatnonzero(self.included_mask() & (np.array(self.holders) == partition_id))
        if not len(mine):
            return None
        return self.examples(test_set).subset(mine)

    def per_client(self, num_clients: int) -> list[int]:
        """How many included canaries each client holds."""
        held = np.array(self.holders)[self.included_mask()]
        return np.bincount(held, minlength=num_clients).tolist()

    def evaluation_set(self, test_set: ArrayDataset) -> ArrayDataset:
        """The test set without the canaries: what the global model is evaluated on."""
        keep = np.setdiff1d(np.arange(len(test_set)), np.array(self.indices, dtype=np.int64))
        return test_set.subset(keep)


def plan_input_canaries(count: int, *, test_set: ArrayDataset, num_clients: int, seed: int) -> InputCanaries:
    """Draw ``count`` mislabelled canaries from ``test_set`` (the module docstring's steps).

    Args:
        count: ``m`` ≥ 2.
        test_set: the held-out examples (``num_classes`` ≥ 2).
        num_clients: clients to spread the canaries over (≥ 1).
        seed: the run's seed.

    Raises:
        ValueError: if ``count`` is below 2 or leaves fewer than 10 test examples to evaluate on.
    """
    if not 2 <= count <= len(test_set) - 10:
        raise ValueError(
            f"input canaries must be between 2 and {len(test_set) - 10} (the test set's {len(test_set)} "
            f"examples less 10 to evaluate on), got {count}"
        )
    rng = np.random.default_rng(np.random.SeedSequence([seed, _PLAN_STREAM]))
    indices = np.sort(rng.choice(len(test_set), size=count, replace=False))  # (m,)
    true = np.asarray(test_set.y)[indices]  # (m,)
    shift = rng.integers(1, test_set.num_classes, size=count)  # (m,) in [1, K): never the true label
    return InputCanaries(
        indices=tuple(int(i) for i in indices),
        labels=tuple(int(y) for y in (true + shift) % test_set.num_classes),
        included=tuple(bool(c) for c in rng.random(count) < 0.5),
        holders=tuple(int(h) for h in rng.integers(num_clients, size=count)),
    )
