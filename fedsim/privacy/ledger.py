"""Per-client privacy ledger: composes ε over every round a client trained."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from fedsim.privacy.calibrate import compute_epsilon
from fedsim.privacy.events import PrivacyEvent, UserLevelRelease


@dataclass
class PrivacyLedger:
    """Records each client's DP-SGD rounds and composes its ε with the run's accountant.

    The ledger is the only place ε is computed. It keeps each client's history
    of :class:`PrivacyEvent` (one per round it trained) and composes the whole
    history with the chosen accountant, so a client's ε covers every round it
    took part in (sample-level DP of that client's data set; rounds it was not
    sampled in cost nothing, since its data were not touched).

    Args:
        delta: δ of every ε the ledger reports, in ``(0, 1)``.
        accountant: a name of :func:`fedsim.privacy.available_accountants` (the run's).

    Example:
        >>> ledger = PrivacyLedger(delta=1e-5, accountant="rdp")
        >>> ledger.record(0, server_round=1, event=PrivacyEvent(1.0, 0.01, 100))
        >>> ledger.record(0, server_round=2, event=PrivacyEvent(1.0, 0.01, 100))
        >>> ledger.rounds_trained(0), round(ledger.epsilon(0), 2)
        (2, 1.34)
    """

    delta: float
    accountant: str
    _history: dict[int, list[tuple[int, PrivacyEvent]]] = field(
        default_factory=lambda: defaultdict(list), init=False, repr=False
    )

    def __post_init__(self) -> None:
        if not 0 < self.delta < 1:
            raise ValueError(f"delta must be in (0, 1), got {self.delta}")

    def record(self, client: int, *, server_round: int, event: PrivacyEvent) -> None:
        """Add one round of DP-SGD on ``client``.

        Raises:
            ValueError: if the client already has an event for ``server_round``.
        """
        if any(r == server_round for r, _ in self._history[client]):
            raise ValueError(f"client {client} already recorded round {server_round}")
        self._history[client].append((server_round, event))

    def state_dict(self) -> list[tuple[int, int, float, float, int]]:
        """Every recorded round as ``(client, server_round, noise_multiplier, sample_rate, steps)``.

        By client, then in recording order: what a checkpoint stores (plain values).
        """
        return [
            (client, r, e.noise_multiplier, e.sample_rate, e.steps)
            for client in sorted(self._history)
            for r, e in self._history[client]
        ]

    def load_state_dict(self, state: list[tuple[int, int, float, float, int]]) -> None:
        """Record the rounds :meth:`state_dict` returned (into an empty ledger)."""
        for client, server_round, sigma, rate, steps in state:
            self.record(client, server_round=server_round, event=PrivacyEvent(sigma, rate, steps))

    def history(self, client: int) -> list[tuple[int, PrivacyEvent]]:
        """``(server_round, event)`` pairs of ``client``, in recording order."""
        return list(self._history.get(client, []))

    def rounds_trained(self, client: int) -> int:
        """Number of rounds ``client`` trained in."""
        return len(self._history.get(client, []))

    def epsilon(self, client: int) -> float:
        """ε of ``client`` at the ledger's δ over all its recorded rounds (0 if none)."""
        history = tuple(event.as_history_entry() for _, event in self._history.get(client, []))
        return compute_epsilon(history, delta=self.delta, accountant=self.accountant)

    def projected_epsilon(self, client: int, event: PrivacyEvent) -> float:
        """ε ``client`` would have after one more round ``event`` (nothing is recorded)."""
        history = tuple(e.as_history_entry() for _, e in self._history.get(client, []))
        return compute_epsilon(
            history + (event.as_history_entry(),), delta=self.delta, accountant=self.accountant
        )

    def epsilons(self) -> dict[int, float]:
        """ε of every client that has trained at least once."""
        return {client: self.epsilon(client) for client in sorted(self._history)}

    def epsilon_max(self) -> float:
        """The run's ε: the largest over clients (0 if nobody trained)."""
        values = self.epsilons().values()
        return max(values, default=0.0)

    def epsilon_mean(self) -> float:
        """Mean ε over clients that trained (0 if nobody trained)."""
        values = list(self.epsilons().values())
        return math.fsum(values) / len(values) if values else 0.0


@dataclass
class ReleaseLedger:
    """User-level ledger: one sampled-Gaussian release of the global model per round.

    Guarantee: that of :class:`fedsim.privacy.events.UserLevelRelease`:
    (ε, δ)-DP of the global models under adding or removing one client's whole
    data set (user-level DP), with clients Poisson-sampled at each release's
    ``sample_rate`` (see :mod:`fedsim.privacy.user_level`). Each round is
    recorded with the round's real noise multiplier, and the whole history is
    composed by the run's accountant.

    Args:
        delta: δ of every ε it reports, in ``(0, 1)``.
        accountant: a name of :func:`fedsim.privacy.available_accountants` (the run's).

    Example:
        >>> ledger = ReleaseLedger(delta=1e-5, accountant="rdp")
        >>> ledger.record(1, UserLevelRelease(1.0, 0.1))
        >>> ledger.epsilon() == compute_epsilon(((1.0, 0.1, 1),), delta=1e-5, accountant="rdp")
        True
    """

    delta: float
    accountant: str
    _history: list[tuple[int, UserLevelRelease]] = field(default_factory=list, init=False, repr=False)

    def record(self, server_round: int, release: UserLevelRelease) -> None:
        """Add one round's release."""
        self._history.append((server_round, release))

    def history(self) -> list[tuple[int, UserLevelRelease]]:
        """``(server_round, release)`` pairs in recording order."""
        return list(self._history)

    def state_dict(self) -> list[tuple[int, float, float]]:
        """Every release as ``(server_round, noise_multiplier, sample_rate)``: what a checkpoint stores."""
        return [(r, e.noise_multiplier, e.sample_rate) for r, e in self._history]

    def load_state_dict(self, state: list[tuple[int, float, float]]) -> None:
        """Record the releases :meth:`state_dict` returned (into an empty ledger)."""
        for server_round, z, rate in state:
            self.record(server_round, UserLevelRelease(z, rate))

    def epsilon(self, extra: UserLevelRelease | None = None) -> float:
        """ε after every recorded release (and ``extra``, if given, without recording it)."""
        entries = tuple(e.as_history_entry() for _, e in self._history)
        if extra is not None:
            entries += (extra.as_history_entry(),)
        return compute_epsilon(entries, delta=self.delta, accountant=self.accountant)
