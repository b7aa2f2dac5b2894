"""The server side of one run: the strategy's hooks, joining the round records, privacy and checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flwr.app import ArrayRecord, MetricRecord

from fedsim.aggregation import ClientReply, FailedClient
from fedsim.aggregation.user_dp import release_state
from fedsim.audit.canaries import CanaryObserver
from fedsim.audit.input_canaries import InputCanaries
from fedsim.privacy.accounting import RunPrivacy
from fedsim.results.records import RoundRecord
from fedsim.simulation.client_app import BLOCKED_CLIENTS_KEY
from fedsim.simulation.recorder import RoundRecorder

CheckpointWriter = Callable[[dict, dict], None]
"""Called after each round with the run's state (:meth:`RunSession.state_dict`) and the global weights."""


@dataclass
class RunSession:
    """What the ServerApp's strategy calls back into, each round; lives in the driver process.

    1. before a round, :meth:`configure_round` asks the privacy accounting which
       clients may not train (or ends the run);
    2. :meth:`on_train_replies` hands the replies to the round records and the
       DP-SGD rounds of the clients that trained to the privacy accounting;
    3. :meth:`on_release` accounts a released global model at the user level;
    4. :meth:`evaluate` closes the round: evaluation, the round's record, the
       checkpoint, then the progress callback.

    Args:
        recorder: the round records and evaluation.
        privacy: the run's privacy accounting.
        on_round: called with each new :class:`RoundRecord` (progress display).
        on_checkpoint: writes the run's state after each round, or None.
        canaries: keeps what the server saw at the run's Dirac canaries' coordinates, or None.
        input_canaries: the run's mislabelled input canaries (the clients train on them), or None.
    """

    recorder: RoundRecorder
    privacy: RunPrivacy
    on_round: Callable[[RoundRecord], None] = lambda record: None
    on_checkpoint: CheckpointWriter | None = None
    server: object | None = None
    server_state: dict | None = None
    canaries: CanaryObserver | None = None
    input_canaries: InputCanaries | None = None

    def attach_server(self, strategy) -> None:
        """Keep the ServerApp's outermost strategy, whose ``state_dict`` each checkpoint holds.

        A resumed run's saved server state (:meth:`load_state_dict`) is loaded into it here.
        """
        self.server = strategy
        if self.server_state is not None:
            strategy.load_state_dict(self.server_state)

    def attach_user_dp(self, wrapper) -> None:
        """Show the privacy accounting the ServerApp's DP-FedAvg wrapper, whose settings each release has."""
        self.privacy.attach_user_dp(lambda: release_state(wrapper))

    def start_round_clock(self) -> None:
        """Time the next round from now (a resumed run, after its start-up)."""
        self.recorder.start_round_clock()

    def configure_round(self, server_round: int) -> dict:
        """The round's extra train-config entries: the clients that may not train.

        Raises:
            fedsim.privacy.accounting.RunStopped: the run ends before this round.
        """
        return {BLOCKED_CLIENTS_KEY: self.privacy.admit(server_round)}

    def on_train_replies(self, replies: list[ClientReply], failed: list[FailedClient]) -> None:
        """Record one round's replies and failed clients (a failed client is charged no ε).

        Raises:
            RuntimeError: if a client trained with other DP-SGD parameters than planned.
        """
        trained = self.recorder.note_replies(replies, failed)
        server_round = replies[0].server_round if replies else 0
        self.privacy.record_round(server_round, [(r.partition_id, r.metrics) for r in trained])

    def on_release(self, server_round: int, num_aggregated: int) -> None:
        """Account one released global model at the user level."""
        self.privacy.record_release(server_round, num_aggregated)

    def on_updates(
        self, before: ArrayRecord, updates: dict[int, ArrayRecord], after: ArrayRecord | None
    ) -> None:
        """Show the canary observer a round's starting model, each trained client's weights, the release."""
        if self.canaries is not None:
            self.canaries.observe(
                _Arrays(before), {pid: _Arrays(a) for pid, a in updates.items()}, after and _Arrays(after)
            )

    def evaluate(self, server_round: int, arrays: ArrayRecord) -> MetricRecord:
        """Evaluate the global model and close the round (Flower's ``evaluate_fn``)."""
        record = self.recorder.close_round(server_round, arrays, self.privacy.close_round())
        if self.on_checkpoint is not None:
            self.on_checkpoint(self.state_dict(), arrays.to_torch_state_dict())
        self.on_round(record)
        return MetricRecord({"accuracy": record.accuracy, "loss": record.loss})

    def state_dict(self) -> dict:
        """Everything a resumed run needs from the server side, after the last recorded round.

        Plain Python values and tensors only (``torch.load(weights_only=True)`` reads it):
        the round records, the privacy accounting's ledgers and stopped clients, and
        the server strategy's state (its optimiser and adaptive clipping). Random
        state needs no entry: cohorts, client seeds, faults and server noise are all
        drawn from ``(seed, round)``.
        """
        rounds = self.recorder.rounds
        return {
            "round": rounds[-1].round if rounds else 0,
            **self.recorder.state_dict(),
            "privacy": self.privacy.state_dict(),
            "server": self.server.state_dict() if self.server is not None else None,
            "canaries": self.canaries.state_dict() if self.canaries is not None else None,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` before a resumed run's first round.

        The server strategy's part waits in :attr:`server_state` until the
        ServerApp's strategy exists (:meth:`attach_server`).
        """
        self.recorder.load_state_dict(state)
        self.privacy.load_state_dict(state["privacy"])
        self.server_state = state["server"]
        if self.canaries is not None and state.get("canaries") is not None:
            self.canaries.load_state_dict(state["canaries"])


class _Arrays:
    """A Flower ``ArrayRecord`` read by name as NumPy arrays (only the names asked for are converted)."""

    def __init__(self, record: ArrayRecord) -> None:
        self._record = record

    def __getitem__(self, name: str):
        return self._record[name].numpy()
