"""Server-side bookkeeping of a run: the privacy ledger and per-round records."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from flwr.app import ArrayRecord, MetricRecord

from fedsim.aggregation import ClientReply
from fedsim.client import evaluate
from fedsim.data import ArrayDataset
from fedsim.privacy import PrivacyEvent, PrivacyLedger
from fedsim.results import ClientRecord, RoundRecord


class ClientFailure(RuntimeError):
    """Every sampled client failed in a round; the message carries the first reason."""


class RunStopped(Exception):
    """Raised before a round when the scenario's budget rule ends the run early (not a failure)."""


@dataclass
class RunRecorder:
    """Collects what the ServerApp sees: client replies, ledger, test metrics.

    Args:
        test_set: held-out examples the global model is evaluated on.
        model: a model of the run's architecture (its weights are overwritten).
        ledger: the privacy ledger, or None without DP.
        device: where evaluation runs.
        on_round: called with each new :class:`RoundRecord` (progress display).
    """

    test_set: ArrayDataset
    model: torch.nn.Module
    ledger: PrivacyLedger | None
    device: torch.device
    on_round: Callable[[RoundRecord], None] = lambda record: None
    rounds: list[RoundRecord] = field(default_factory=list)
    _pending: list[ClientReply] = field(default_factory=list)
    _pending_errors: list[str] = field(default_factory=list)
    _rounds_trained: dict[int, int] = field(default_factory=dict)
    _last_time: float = field(default_factory=time.perf_counter)

    def configure_round(self, server_round: int) -> dict:
        """Extra train-config entries for ``server_round`` (the strategy's hook).

        Raises:
            RunStopped: when too few clients have budget left and the scenario says stop.
        """
        return {}

    def on_train_replies(self, replies: list[ClientReply], errors: list[str]) -> None:
        """Record one round's client replies in the ledger (the strategy's hook).

        Raises:
            ClientFailure: if no client of the round succeeded.
        """
        if errors and not replies:
            raise ClientFailure(f"every sampled client failed; first error: {errors[0]}")
        self._pending, self._pending_errors = replies, errors
        for reply in replies:
            pid = reply.partition_id
            self._rounds_trained[pid] = self._rounds_trained.get(pid, 0) + 1
            if self.ledger is not None:
                event = PrivacyEvent(
                    noise_multiplier=float(reply.metrics["noise-multiplier"]),
                    sample_rate=float(reply.metrics["sample-rate"]),
                    steps=int(reply.metrics["steps"]),
                )
                self.ledger.record(pid, server_round=reply.server_round, event=event)

    def evaluate(self, server_round: int, arrays: ArrayRecord) -> MetricRecord:
        """Evaluate the global model and close the round (Flower's ``evaluate_fn``)."""
        self.model.load_state_dict(arrays.to_torch_state_dict())
        metrics = evaluate(self.model, self.test_set, device=self.device)
        eps_max = eps_mean = None
        if self.ledger is not None:
            eps_max, eps_mean = self.ledger.epsilon_max(), self.ledger.epsilon_mean()
        replies = self._pending if server_round > 0 else []
        weight = sum(int(r.metrics["num-examples"]) for r in replies)
        train_loss = (
            math.fsum(float(r.metrics["train-loss"]) * int(r.metrics["num-examples"]) for r in replies)
            / weight
            if weight
            else None
        )
        now = time.perf_counter()
        record = RoundRecord(
            round=server_round,
            accuracy=metrics.accuracy,
            loss=metrics.loss,
            epsilon_max=eps_max,
            epsilon_mean=eps_mean,
            clients_trained=len(replies),
            clients_failed=len(self._pending_errors) if server_round > 0 else 0,
            train_loss=train_loss,
            round_s=now - self._last_time if server_round > 0 else 0.0,
        )
        self._last_time = now
        self._pending, self._pending_errors = [], []
        self.rounds.append(record)
        self.on_round(record)
        return MetricRecord({"accuracy": metrics.accuracy, "loss": metrics.loss})

    def client_records(self, sizes: list[int]) -> list[ClientRecord]:
        """One :class:`ClientRecord` per client, given each client's data size."""
        records = []
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
                )
            )
        return records
