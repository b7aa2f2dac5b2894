"""The interface every privacy accountant of fedsim implements.

An accountant turns a DP-SGD history into an ε and, the other way round, a
budget into a noise multiplier. Accountants are stateless: the history is an
argument, not something the accountant keeps, so that one instance can serve
every client and results can be cached on the history.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import ClassVar

HistoryEntry = tuple[float, float, int]
"""``(noise_multiplier, sample_rate, steps)``: Opacus's ``accountant.history`` entry."""


class Accountant(ABC):
    """A stateless privacy accountant of the Poisson-subsampled Gaussian mechanism.

    Guarantee: :meth:`epsilon` returns an ε such that running, in order, every
    entry ``(σ, q, steps)`` of the history (``steps`` noisy steps, each on a
    batch drawn by Poisson sampling with probability ``q`` and releasing a sum
    of L2-clipped contributions plus Gaussian noise of std ``σ`` times the
    clipping norm) is (ε, δ)-DP under the add/remove-one neighbouring relation.
    This is DP-SGD (Abadi et al. 2016, https://arxiv.org/abs/1607.00133) and the
    setting of Opacus's accountants.

    Subclasses set :attr:`name` and implement :meth:`_epsilon` and
    :meth:`_calibrate`; the edge cases shared by every accountant (an empty
    history, zero noise, invalid arguments) are handled here, once.

    Attributes:
        name: the accountant's registry key (e.g. ``"rdp"``).
    """

    __slots__ = ()
    name: ClassVar[str]

    def epsilon(self, history: tuple[HistoryEntry, ...], *, delta: float) -> float:
        """ε of a composed history at ``delta``.

        Args:
            history: ``(noise_multiplier ≥ 0, sample_rate in (0, 1], steps ≥ 0)``
                entries, composed in order; entries with 0 steps are skipped.
            delta: target δ in ``(0, 1)``.

        Returns:
            ε ≥ 0: 0.0 if no entry has a step, ``inf`` if an entry with steps
            has noise multiplier 0 (no privacy), else the accountant's bound.
        """
        entries = tuple(entry for entry in history if entry[2] > 0)
        if not entries:
            return 0.0
        if any(sigma == 0 for sigma, _, _ in entries):
            return math.inf
        return self._epsilon(entries, delta=delta)

    def calibrate(
        self, *, target_epsilon: float, target_delta: float, sample_rate: float, steps: int
    ) -> float:
        """Smallest noise multiplier σ (within the accountant's tolerance) meeting a budget.

        The result satisfies ``epsilon(((σ, sample_rate, steps),), delta=target_delta)
        ≤ target_epsilon``.

        Args:
            target_epsilon: ε budget (> 0).
            target_delta: δ in ``(0, 1)``.
            sample_rate: Poisson sampling probability q in ``(0, 1]``.
            steps: noisy steps (≥ 1) the budget must cover.

        Returns:
            σ > 0, the noise std over the clipping norm.

        Raises:
            ValueError: if an argument is out of range or no σ reaches the budget.
        """
        if not (target_epsilon > 0 and 0 < target_delta < 1 and 0 < sample_rate <= 1 and steps >= 1):
            raise ValueError(
                "need target_epsilon > 0, target_delta in (0, 1), sample_rate in (0, 1] and steps ≥ 1, "
                f"got {target_epsilon}, {target_delta}, {sample_rate}, {steps}"
            )
        return self._calibrate(
            target_epsilon=target_epsilon, target_delta=target_delta, sample_rate=sample_rate, steps=steps
        )

    @abstractmethod
    def _epsilon(self, entries: tuple[HistoryEntry, ...], *, delta: float) -> float:
        """ε of a non-empty history whose every entry has σ > 0 and steps ≥ 1."""

    @abstractmethod
    def _calibrate(
        self, *, target_epsilon: float, target_delta: float, sample_rate: float, steps: int
    ) -> float:
        """:meth:`calibrate` for arguments already checked to be in range."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
