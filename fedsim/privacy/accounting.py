"""The run's privacy accounting: who may train this round, what each round cost, ε, and its saved state.

One :class:`RunPrivacy` per run lives on the server. It owns the sample-level
ledger (one :class:`~fedsim.privacy.events.PrivacyEvent` per client and round
it trained), the budget guard, and the user-level release ledger (one
:class:`~fedsim.privacy.events.UserLevelRelease` per released global model).
Clients report mechanism parameters, never ε; ε is composed here from the real
history by the run's accountant.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from fedsim.privacy.events import PrivacyEvent, UserLevelRelease
from fedsim.privacy.guard import BudgetGuard
from fedsim.privacy.ledger import PrivacyLedger, ReleaseLedger
from fedsim.privacy.stopping import StoppingRule
from fedsim.privacy.user_level import release_noise_multiplier, replace_one_epsilon

ReleaseState = Callable[[], Mapping[str, float | int | None]]
"""Reads the DP-FedAvg wrapper's current settings: ``update_noise_multiplier``, ``num_sampled_clients``,
``clipped_count_stddev`` and ``clipping_norm`` (:func:`fedsim.aggregation.user_dp.release_state`)."""


ROUND_FIGURES = (
    "epsilon_max",
    "epsilon_mean",
    "noise_multiplier",
    "max_grad_norm",
    "user_noise_multiplier",
    "clipping_norm",
    "user_epsilon",
)
"""The privacy figures of one round (:meth:`RunPrivacy.close_round`'s keys), None where a level is off."""


class RunStopped(Exception):
    """Raised before a round when the scenario's budget rule ends the run early (not a failure)."""


@dataclass
class UserLevelAccounting:
    """The user-level ledger of a run and the settings its rounds are accounted with.

    Args:
        ledger: composes one release per round.
        sample_rate: client sampling rate q (cohort / clients).
        noise_multiplier: the nominal z the wrapper was built with.
        target_epsilon: user-level budget, or None; the run stops before a
            round whose release could exceed it (see :meth:`RunPrivacy.admit`).
        release_state: reads the ServerApp's DP-FedAvg wrapper (set by
            :meth:`RunPrivacy.attach_user_dp`); each release is accounted with it.
        cohort_sampling: ``fixed`` (ε: the run's accountant at q = cohort / clients,
            an approximation; :meth:`RunPrivacy.user_epsilon_replace_one` is a proved bound)
            or ``poisson`` (each release divides the sum by the fixed expected
            cohort, so its multiplier is z whoever trained: ε is exact).
        num_clients: clients in the federation (replace-one accounting).
        cohort: clients per round (fixed) or the expected cohort (Poisson).
    """

    ledger: ReleaseLedger
    sample_rate: float
    noise_multiplier: float
    target_epsilon: float | None = None
    release_state: ReleaseState | None = None
    cohort_sampling: str = "fixed"
    num_clients: int = 1
    cohort: int = 1

    @property
    def exact(self) -> bool:
        """Whether the run's accountant's ε is exact for how cohorts are drawn (Poisson sampling)."""
        return self.cohort_sampling == "poisson"


@dataclass
class RunPrivacy:
    """A run's privacy accounting on the server, for both levels of DP.

    Args:
        ledger: the sample-level ledger, or None without DP-SGD.
        stopping: when too few clients with sample-level budget left end the run.
        guard: stops clients whose sample-level budget is spent (None: no budgets).
        user: user-level accounting, or None without DP-FedAvg.
        max_grad_norm: DP-SGD's clipping norm, reported per round (None without DP-SGD).
    """

    ledger: PrivacyLedger | None
    stopping: StoppingRule
    guard: BudgetGuard | None = None
    user: UserLevelAccounting | None = None
    max_grad_norm: float | None = None
    stop_reason: str | None = None
    last_release: tuple[float | None, float | None] = (None, None)
    _sigmas: list[float] = field(default_factory=list)

    def attach_user_dp(self, release_state: ReleaseState) -> None:
        """Give the accounting the DP-FedAvg wrapper's settings, which each release is accounted by."""
        if self.user is not None:
            self.user.release_state = release_state

    def admit(self, server_round: int) -> list[int]:
        """Before a round: the clients that may not train, or :class:`RunStopped` if the run ends here.

        1. clients whose sample-level budget cannot pay for their next round are
           blocked (they stay blocked); if fewer than the stopping rule's
           ``min_clients`` remain, the run stops (``when_too_few = "stop"``, or nobody is left);
        2. under user-level DP with a budget, the run stops before a round whose
           release could exceed it: the forecast assumes every blocked client is
           sampled (the fewest updates the round can average, hence the least
           noise); only clients that fail during the round can still lower it.

        Returns:
            The blocked clients' partition ids, sorted.

        Raises:
            RunStopped: the run ends before ``server_round``; :attr:`stop_reason` says why.
        """
        blocked: list[int] = []
        if self.guard is not None:
            blocked = self.guard.blocked(server_round)
            active = self.guard.active()
            if self.stopping.stops(active=active):
                self._stop(
                    f"before round {server_round}: {active} client(s) had sample-level budget left for "
                    f"another round, fewer than privacy.min-clients = {self.stopping.min_clients}"
                )
        if self.user is not None and self.user.target_epsilon is not None:
            target = self.user.target_epsilon
            if self.user.ledger.epsilon(extra=self._next_release(len(blocked))) > target:
                self._stop(
                    f"before round {server_round}: another user-level release would exceed "
                    f"privacy.user-target-epsilon = {target:g}"
                )
        return blocked

    def _stop(self, reason: str) -> None:
        self.stop_reason = reason
        raise RunStopped(reason)

    def _release(self, num_aggregated: int) -> tuple[UserLevelRelease, Mapping]:
        """The release of a round that averages ``num_aggregated`` updates, and the wrapper's state."""
        state = self.user.release_state()
        if self.user.exact:  # the sum over the fixed expected cohort: sensitivity C / W, noise z·C / W
            return UserLevelRelease(state["update_noise_multiplier"], self.user.sample_rate), state
        z = release_noise_multiplier(
            update_noise_multiplier=state["update_noise_multiplier"],
            num_aggregated=num_aggregated,
            num_sampled_clients=state["num_sampled_clients"],
            clipped_count_stddev=state["clipped_count_stddev"],
        )
        return UserLevelRelease(z, self.user.sample_rate), state

    def _next_release(self, num_blocked: int) -> UserLevelRelease:
        """The next user-level release at its least noise: every blocked client in the cohort skips."""
        if self.user.release_state is None:
            return UserLevelRelease(self.user.noise_multiplier, self.user.sample_rate)
        cohort = self.user.release_state()["num_sampled_clients"]
        return self._release(max(1, cohort - num_blocked))[0]

    def record_round(self, server_round: int, trained: list[tuple[int, Mapping]]) -> None:
        """Record the DP-SGD round of each client that trained: ``(partition_id, reply metrics)`` pairs.

        Raises:
            RuntimeError: if a client trained with other DP-SGD parameters than planned.
        """
        self._sigmas = []
        if self.ledger is None:
            return
        for pid, metrics in trained:
            event = PrivacyEvent.from_metrics(metrics)
            if self.guard is not None:
                self.guard.check(pid, event)
            self.ledger.record(pid, server_round=server_round, event=event)
            self._sigmas.append(event.noise_multiplier)

    def record_release(self, server_round: int, num_aggregated: int) -> None:
        """Account one released global model at the user level.

        The release's noise multiplier is the one really applied: see
        :func:`fedsim.privacy.release_noise_multiplier`.
        """
        if self.user is None or self.user.release_state is None:
            return
        release, state = self._release(num_aggregated)
        self.user.ledger.record(server_round, release)
        self.last_release = (release.noise_multiplier, state["clipping_norm"])

    def close_round(self) -> dict[str, float | None]:
        """The round's privacy figures for its :class:`fedsim.results.RoundRecord`, then forget the round.

        Returns:
            ``epsilon_max``, ``epsilon_mean`` (sample level), ``noise_multiplier`` (mean σ of the
            clients that trained), ``max_grad_norm``, ``user_noise_multiplier``, ``clipping_norm``
            and ``user_epsilon``; None where the level is off.
        """
        figures: dict[str, float | None] = dict.fromkeys(ROUND_FIGURES)
        if self.ledger is not None:
            figures["epsilon_max"], figures["epsilon_mean"] = (
                self.ledger.epsilon_max(),
                self.ledger.epsilon_mean(),
            )
            figures["noise_multiplier"] = (
                math.fsum(self._sigmas) / len(self._sigmas) if self._sigmas else None
            )
            figures["max_grad_norm"] = self.max_grad_norm
        figures["user_epsilon"] = self.user.ledger.epsilon() if self.user is not None else None
        if self.user is not None:
            figures["user_noise_multiplier"], figures["clipping_norm"] = self.last_release
        self._sigmas, self.last_release = [], (None, None)
        return figures

    def client_history(self, partition_id: int) -> tuple[float, float | None, float | None]:
        """``(epsilon, noise_multiplier, sample_rate)`` of a client's last trained round (None if never)."""
        history = self.ledger.history(partition_id)
        last = history[-1][1] if history else None
        return (
            self.ledger.epsilon(partition_id),
            last.noise_multiplier if last else None,
            last.sample_rate if last else None,
        )

    def user_epsilon_replace_one(self) -> float | None:
        """User-level ε proved for fixed-size cohorts, replacing one client (None: Poisson, or no user level).

        See :func:`fedsim.privacy.user_level.replace_one_epsilon`; composed over every recorded release.
        """
        if self.user is None or self.user.exact:
            return None
        zs = [release.noise_multiplier for _, release in self.user.ledger.history()]
        return replace_one_epsilon(
            zs, num_clients=self.user.num_clients, cohort=self.user.cohort, delta=self.user.ledger.delta
        )

    def state_dict(self) -> dict:
        """Both ledgers and the guard's stopped clients, as plain values (for a checkpoint)."""
        return {
            "ledger": self.ledger.state_dict() if self.ledger is not None else [],
            "user_ledger": self.user.ledger.state_dict() if self.user is not None else [],
            "stopped_round": dict(self.guard.stopped_round) if self.guard is not None else {},
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` before a resumed run's first round."""
        if self.ledger is not None:
            self.ledger.load_state_dict(state["ledger"])
        if self.user is not None:
            self.user.ledger.load_state_dict(state["user_ledger"])
        if self.guard is not None:
            self.guard.stopped_round.update(state["stopped_round"])
