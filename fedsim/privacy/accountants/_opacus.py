"""Opacus's accountants behind fedsim's :class:`~fedsim.privacy.accountants.Accountant` interface.

The calls are exactly those fedsim has always made (``create_accountant``, a
``history`` assignment, ``get_epsilon``; ``get_noise_multiplier`` to calibrate),
so every ε and σ is bit-identical to Opacus's own and saved results do not move.
"""

from __future__ import annotations

from opacus.accountants import create_accountant as create_opacus_accountant
from opacus.accountants.utils import get_noise_multiplier

from fedsim.privacy.accountants.base import Accountant, HistoryEntry


class OpacusAccountant(Accountant):
    """An Opacus accountant, chosen by its Opacus mechanism name (= :attr:`name`).

    Calibration is Opacus's bisection: it returns the σ of the bracket's upper
    end once that σ's ε is within 0.01 below the target (``epsilon_tolerance``),
    and fails above σ = 10⁶.
    """

    __slots__ = ()

    def _epsilon(self, entries: tuple[HistoryEntry, ...], *, delta: float) -> float:
        acct = create_opacus_accountant(mechanism=self.name)
        acct.history = list(entries)
        return float(acct.get_epsilon(delta=delta))

    def _calibrate(
        self, *, target_epsilon: float, target_delta: float, sample_rate: float, steps: int
    ) -> float:
        return float(
            get_noise_multiplier(
                target_epsilon=target_epsilon,
                target_delta=target_delta,
                sample_rate=sample_rate,
                steps=steps,
                accountant=self.name,
            )
        )
