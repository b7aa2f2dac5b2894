"""Server-side bookkeeping of a run: privacy ledgers, budget enforcement and per-round records."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from flwr.app import ArrayRecord, MetricRecord

from fedsim.aggregation import ClientReply, FailedClient, is_skipped
from fedsim.aggregation.user_dp import release_state
from fedsim.client import evaluate
from fedsim.data import ArrayDataset
from fedsim.privacy import BudgetGuard, PrivacyEvent, PrivacyLedger, ReleaseLedger, release_noise_multiplier
from fedsim.results import ClientRecord, RoundRecord
from fedsim.simulation.client_app import BLOCKED_CLIENTS_KEY


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
            round whose release could exceed it (see :meth:`RunRecorder.configure_round`).
        wrapper: the ServerApp's DP-FedAvg wrapper (set by
            :meth:`RunRecorder.attach_user_dp`); its settings are read after each release.
    """

    ledger: ReleaseLedger
    sample_rate: float
    noise_multiplier: float
    target_epsilon: float | None = None
    wrapper: object | None = None


@dataclass
class RunRecorder:
    """Collects what the ServerApp sees: client replies, ledgers, budgets, test metrics.

    Args:
        test_set: held-out examples the global model is evaluated on.
        model: a model of the run's architecture (its weights are overwritten).
        ledger: the sample-level privacy ledger, or None without DP-SGD.
        device: where evaluation runs.
        on_round: called with each new :class:`RoundRecord` (progress display).
        guard: stops clients whose sample-level budget is spent (None: no budgets).
        min_clients: fewest clients with budget left for the run to go on.
        when_too_few: ``stop`` ends the run below ``min_clients``; ``continue``
            goes on while any client can train.
        user: user-level accounting, or None without DP-FedAvg.
        max_grad_norm: DP-SGD clipping norm, reported per round.
        on_checkpoint: called after each round with :meth:`state_dict` and the
            global model's weights (the run's checkpoint writer), or None.
    """

    test_set: ArrayDataset
    model: torch.nn.Module
    ledger: PrivacyLedger | None
    device: torch.device
    on_round: Callable[[RoundRecord], None] = lambda record: None
    guard: BudgetGuard | None = None
    min_clients: int = 1
    when_too_few: str = "stop"
    user: UserLevelAccounting | None = None
    max_grad_norm: float | None = None
    on_checkpoint: Callable[[dict, dict], None] | None = None
    rounds: list[RoundRecord] = field(default_factory=list)
    stop_reason: str | None = None
    first_error: str | None = None
    server: object | None = None
    server_state: dict | None = None
    _pending: list[ClientReply] = field(default_factory=list)
    _pending_failed: list[FailedClient] = field(default_factory=list)
    _rounds_trained: dict[int, int] = field(default_factory=dict)
    _release: tuple[float | None, float | None] = (None, None)
    _last_time: float = field(default_factory=time.perf_counter)

    def start_round_clock(self) -> None:
        """Time the next round from now (a resumed run, after its start-up)."""
        self._last_time = time.perf_counter()

    def attach_server(self, strategy) -> None:
        """Give the recorder the ServerApp's outermost strategy, whose ``state_dict`` each checkpoint holds.

        A resumed run's saved server state (:meth:`load_state_dict`) is loaded into it here.
        """
        self.server = strategy
        if self.server_state is not None:
            strategy.load_state_dict(self.server_state)

    def attach_user_dp(self, wrapper) -> None:
        """Give the recorder the ServerApp's DP-FedAvg wrapper, whose settings each round is accounted by."""
        if self.user is not None:
            self.user.wrapper = wrapper

    def configure_round(self, server_round: int) -> dict:
        """Before a round: which clients may train, and whether the run goes on (the strategy's hook).

        1. clients whose sample-level budget cannot pay for their next round are
           blocked (they stay blocked); if fewer than ``min_clients`` remain, the
           run stops (``when_too_few = "stop"``, or nobody is left);
        2. under user-level DP with a budget, the run stops before a round whose
           release could exceed it: the forecast assumes every blocked client is
           sampled (the fewest updates the round can average, hence the least
           noise); only clients that fail during the round can still lower it.

        Returns:
            ``{"blocked-clients": [...]}`` for the train config.

        Raises:
            RunStopped: the run ends here; :attr:`stop_reason` says why.
        """
        blocked: list[int] = []
        if self.guard is not None:
            blocked = self.guard.blocked(server_round)
            active = self.guard.active()
            if active == 0 or (active < self.min_clients and self.when_too_few == "stop"):
                self.stop_reason = (
                    f"before round {server_round}: {active} client(s) had sample-level budget left for "
                    f"another round, fewer than privacy.min-clients = {self.min_clients}"
                )
                raise RunStopped(self.stop_reason)
        if self.user is not None and self.user.target_epsilon is not None:
            target = self.user.target_epsilon
            if self.user.ledger.epsilon(extra=self._next_release(len(blocked))) > target:
                self.stop_reason = (
                    f"before round {server_round}: another user-level release would exceed "
                    f"privacy.user-target-epsilon = {target:g}"
                )
                raise RunStopped(self.stop_reason)
        return {BLOCKED_CLIENTS_KEY: blocked}

    def _next_release(self, num_blocked: int) -> PrivacyEvent:
        """The next user-level release at its least noise: every blocked client in the cohort skips."""
        user = self.user
        if user.wrapper is None:
            return PrivacyEvent(user.noise_multiplier, user.sample_rate, 1)
        state = release_state(user.wrapper)
        cohort = state["num_sampled_clients"]
        z = release_noise_multiplier(
            update_noise_multiplier=state["update_noise_multiplier"],
            num_aggregated=max(1, cohort - num_blocked),
            num_sampled_clients=cohort,
            clipped_count_stddev=state["clipped_count_stddev"],
        )
        return PrivacyEvent(z, user.sample_rate, 1)

    def on_train_replies(self, replies: list[ClientReply], failed: list[FailedClient]) -> None:
        """Record one round's client replies in the ledger, and its failed clients (the strategy's hook).

        A failed client (an error, or no reply in time) is charged no ε: its
        update was never aggregated, so nothing derived from its data was released.

        Raises:
            RuntimeError: if a client trained with other DP-SGD parameters than planned.
        """
        self._pending, self._pending_failed = replies, failed
        if failed and self.first_error is None:
            self.first_error = failed[0].reason
        for reply in replies:
            if is_skipped(reply.metrics):
                continue
            pid = reply.partition_id
            self._rounds_trained[pid] = self._rounds_trained.get(pid, 0) + 1
            if self.ledger is not None:
                event = PrivacyEvent(
                    noise_multiplier=float(reply.metrics["noise-multiplier"]),
                    sample_rate=float(reply.metrics["sample-rate"]),
                    steps=int(reply.metrics["steps"]),
                )
                if self.guard is not None:
                    self.guard.check(pid, event)
                self.ledger.record(pid, server_round=reply.server_round, event=event)

    def on_release(self, server_round: int, num_aggregated: int) -> None:
        """Account one released global model at the user level (the strategy's hook).

        The release's noise multiplier is the one really applied: see
        :func:`fedsim.privacy.release_noise_multiplier`.
        """
        if self.user is None or self.user.wrapper is None:
            return
        state = release_state(self.user.wrapper)
        z = release_noise_multiplier(
            update_noise_multiplier=state["update_noise_multiplier"],
            num_aggregated=num_aggregated,
            num_sampled_clients=state["num_sampled_clients"],
            clipped_count_stddev=state["clipped_count_stddev"],
        )
        self.user.ledger.record(server_round, PrivacyEvent(z, self.user.sample_rate, 1))
        self._release = (z, state["clipping_norm"])

    def evaluate(self, server_round: int, arrays: ArrayRecord) -> MetricRecord:
        """Evaluate the global model and close the round (Flower's ``evaluate_fn``)."""
        self.model.load_state_dict(arrays.to_torch_state_dict())
        metrics = evaluate(self.model, self.test_set, device=self.device)
        replies = self._pending if server_round > 0 else []
        trained = [r for r in replies if not is_skipped(r.metrics)]
        eps_max = eps_mean = sigma = None
        if self.ledger is not None:
            eps_max, eps_mean = self.ledger.epsilon_max(), self.ledger.epsilon_mean()
            sigmas = [float(r.metrics["noise-multiplier"]) for r in trained]
            sigma = math.fsum(sigmas) / len(sigmas) if sigmas else None
        user_z = clip = user_eps = None
        if self.user is not None:
            user_z, clip = self._release if server_round > 0 else (None, None)
            user_eps = self.user.ledger.epsilon()
        weight = sum(int(r.metrics["num-examples"]) for r in trained)
        losses = [float(r.metrics["train-loss"]) * int(r.metrics["num-examples"]) for r in trained]
        train_loss = math.fsum(losses) / weight if weight else None
        now = time.perf_counter()
        record = RoundRecord(
            round=server_round,
            accuracy=metrics.accuracy,
            loss=metrics.loss,
            epsilon_max=eps_max,
            epsilon_mean=eps_mean,
            clients_trained=len(trained),
            clients_failed=len(self._pending_failed) if server_round > 0 else 0,
            train_loss=train_loss,
            round_s=now - self._last_time if server_round > 0 else 0.0,
            clients_skipped=len(replies) - len(trained),
            noise_multiplier=sigma,
            max_grad_norm=self.max_grad_norm if self.ledger is not None else None,
            user_noise_multiplier=user_z,
            clipping_norm=clip,
            user_epsilon=user_eps,
            failed_clients=" ".join(
                "?" if f.partition_id is None else str(f.partition_id) for f in self._pending_failed
            )
            or None,
        )
        self._last_time = now
        self._pending, self._pending_failed, self._release = [], [], (None, None)
        self.rounds.append(record)
        if self.on_checkpoint is not None:
            self.on_checkpoint(self.state_dict(), arrays.to_torch_state_dict())
        self.on_round(record)
        return MetricRecord({"accuracy": metrics.accuracy, "loss": metrics.loss})

    def state_dict(self) -> dict:
        """Everything a resumed run needs from the server side, after the last recorded round.

        Plain Python values and tensors only (``torch.load(weights_only=True)`` reads it):
        the round records, both privacy ledgers, the budget guard's stopped
        clients, rounds trained per client, the first client error and the
        server optimiser's state (:meth:`fedsim.aggregation.strategies.RoundHooks.state_dict`,
        with NumPy arrays as tensors). Random state needs no entry: cohorts, client
        seeds, faults and server noise are all drawn from ``(seed, round)``.
        """
        server = self.server.state_dict() if self.server is not None else {"momentum": None, "clipping": {}}
        momentum = server["momentum"]
        return {
            "round": self.rounds[-1].round if self.rounds else 0,
            "rounds": [asdict(r) for r in self.rounds],
            "ledger": self.ledger.entries() if self.ledger is not None else [],
            "user_ledger": (
                [(r, e.noise_multiplier, e.sample_rate, e.steps) for r, e in self.user.ledger.history()]
                if self.user is not None
                else []
            ),
            "stopped_round": dict(self.guard.stopped_round) if self.guard is not None else {},
            "rounds_trained": dict(self._rounds_trained),
            "first_error": self.first_error,
            "momentum": [torch.from_numpy(m.copy()) for m in momentum] if momentum is not None else None,
            "clipping": dict(server["clipping"]),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` before a resumed run's first round.

        The server optimiser's part waits in :attr:`server_state` until the
        ServerApp's strategy exists (:meth:`attach_server`).
        """
        self.rounds = [RoundRecord(**r) for r in state["rounds"]]
        if self.ledger is not None:
            for client, server_round, sigma, rate, steps in state["ledger"]:
                self.ledger.record(client, server_round=server_round, event=PrivacyEvent(sigma, rate, steps))
        if self.user is not None:
            for server_round, z, rate, steps in state["user_ledger"]:
                self.user.ledger.record(server_round, PrivacyEvent(z, rate, steps))
        if self.guard is not None:
            self.guard.stopped_round.update(state["stopped_round"])
        self._rounds_trained = dict(state["rounds_trained"])
        self.first_error = state["first_error"]
        momentum = state["momentum"]
        self.server_state = {
            "momentum": [m.numpy() for m in momentum] if momentum is not None else None,
            "clipping": state["clipping"],
        }

    def client_records(
        self, sizes: list[int], *, tiers: list[str | None], budgets: list[float | None]
    ) -> list[ClientRecord]:
        """One :class:`ClientRecord` per client, given each client's data size, tier and budget."""
        records = []
        stopped = self.guard.stopped_round if self.guard is not None else {}
        for pid, examples in enumerate(sizes):
            history = self.ledger.history(pid) if self.ledger is not None else []
            sigma, rate = (
                (history[-1][1].noise_multiplier, history[-1][1].sample_rate) if history else (None, None)
            )
            records.append(
                ClientRecord(
                    client=pid,
                    examples=examples,
                    rounds_trained=self._rounds_trained.get(pid, 0),
                    epsilon=self.ledger.epsilon(pid) if self.ledger is not None else None,
                    noise_multiplier=sigma,
                    sample_rate=rate,
                    tier=tiers[pid],
                    budget=budgets[pid] if self.ledger is not None else None,
                    stopped_round=stopped.get(pid),
                )
            )
        return records
