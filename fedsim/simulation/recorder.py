"""The run's round records: evaluation of each global model, and what each round's clients did."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace

import torch
from flwr.app import ArrayRecord

from fedsim.aggregation import ClientReply, FailedClient, is_skipped
from fedsim.client import evaluate
from fedsim.data import ArrayDataset
from fedsim.results.records import RoundRecord


@dataclass
class RoundRecorder:
    """Evaluates the global model after each round and keeps one :class:`RoundRecord` per round.

    It sees every client reply (trained, skipped or failed) but knows nothing of
    privacy: a round's privacy figures are handed to :meth:`close_round`.

    Args:
        test_set: held-out examples the global model is evaluated on.
        model: a model of the run's architecture (its weights are overwritten).
        device: where evaluation runs.
        round_test_set: what rounds ``1 .. last_round - 1`` are evaluated on (``test_set``
            or a subset of it, :meth:`fedsim.client.EvaluationSpec.round_subset`).
        last_round: the run's last round; it and round 0 use the whole ``test_set``
            (a run that stops earlier gets its last record re-measured: :meth:`finish`).
    """

    test_set: ArrayDataset
    model: torch.nn.Module
    device: torch.device
    round_test_set: ArrayDataset
    last_round: int
    rounds: list[RoundRecord] = field(default_factory=list)
    first_error: str | None = None
    rounds_trained: dict[int, int] = field(default_factory=dict)
    _pending: list[ClientReply] = field(default_factory=list)
    _pending_failed: list[FailedClient] = field(default_factory=list)
    _last_time: float = field(default_factory=time.perf_counter)

    def start_round_clock(self) -> None:
        """Time the next round from now (a resumed run, after its start-up)."""
        self._last_time = time.perf_counter()

    def note_replies(self, replies: list[ClientReply], failed: list[FailedClient]) -> list[ClientReply]:
        """Keep one round's replies and failed clients; count each training client's round.

        Returns:
            The replies of the clients that trained (not skipped), in the order given.
        """
        self._pending, self._pending_failed = replies, failed
        if failed and self.first_error is None:
            self.first_error = failed[0].reason
        trained = [r for r in replies if not is_skipped(r.metrics)]
        for reply in trained:
            self.rounds_trained[reply.partition_id] = self.rounds_trained.get(reply.partition_id, 0) + 1
        return trained

    def close_round(self, server_round: int, arrays: ArrayRecord, privacy: dict) -> RoundRecord:
        """Evaluate the global model, close the round and record it.

        Args:
            server_round: the round (0: the initial model).
            arrays: the global model after the round.
            privacy: the round's privacy figures (:meth:`fedsim.privacy.accounting.RunPrivacy.close_round`).
        """
        self.model.load_state_dict(arrays.to_torch_state_dict())
        whole = server_round in (0, self.last_round)
        metrics = evaluate(self.model, self.test_set if whole else self.round_test_set, device=self.device)
        replies = self._pending if server_round > 0 else []
        trained = [r for r in replies if not is_skipped(r.metrics)]
        weight = sum(int(r.metrics["num-examples"]) for r in trained)
        losses = [float(r.metrics["train-loss"]) * int(r.metrics["num-examples"]) for r in trained]
        failed = self._pending_failed if server_round > 0 else []
        now = time.perf_counter()
        record = RoundRecord(
            round=server_round,
            accuracy=metrics.accuracy,
            loss=metrics.loss,
            epsilon_max=privacy["epsilon_max"],
            epsilon_mean=privacy["epsilon_mean"],
            clients_trained=len(trained),
            clients_failed=len(failed),
            train_loss=math.fsum(losses) / weight if weight else None,
            round_s=now - self._last_time if server_round > 0 else 0.0,
            clients_skipped=len(replies) - len(trained),
            noise_multiplier=privacy["noise_multiplier"],
            max_grad_norm=privacy["max_grad_norm"],
            user_noise_multiplier=privacy["user_noise_multiplier"],
            clipping_norm=privacy["clipping_norm"],
            user_epsilon=privacy["user_epsilon"],
            failed_clients=" ".join("?" if f.partition_id is None else str(f.partition_id) for f in failed)
            or None,
            test_examples=metrics.num_examples,
        )
        self._last_time = now
        self._pending, self._pending_failed = [], []
        self.rounds.append(record)
        return record

    def finish(self) -> None:
        """After the last round: re-measure the last record on the whole test set if it used the subset.

        A run that stops before its last round (a budget rule, ``privacy.when-too-few``)
        last evaluated on ``round_test_set``; its final accuracy is on the whole test set
        like every other run's. ``model`` holds the last round's weights.
        """
        if not self.rounds or self.rounds[-1].test_examples == len(self.test_set):
            return
        metrics = evaluate(self.model, self.test_set, device=self.device)
        self.rounds[-1] = replace(
            self.rounds[-1], accuracy=metrics.accuracy, loss=metrics.loss, test_examples=metrics.num_examples
        )

    def state_dict(self) -> dict:
        """The rounds so far, rounds trained per client and the first client error (plain values)."""
        return {
            "rounds": [asdict(r) for r in self.rounds],
            "rounds_trained": dict(self.rounds_trained),
            "first_error": self.first_error,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` before a resumed run's first round."""
        self.rounds = [RoundRecord(**r) for r in state["rounds"]]
        self.rounds_trained = dict(state["rounds_trained"])
        self.first_error = state["first_error"]
