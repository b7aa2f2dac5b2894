"""What clients send back in a round, and the callbacks the round hooks hand it to.

A client's training reply carries its partition id and metrics (its privacy
event among them); :class:`ClientReply` is that reply as the server's
bookkeeping sees it, :class:`FailedClient` a sampled client without a usable
reply. The metric :data:`WEIGHT_KEY` decides how much a reply counts in the
average (:func:`is_aggregated`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ClientReply:
    """One client's training reply in one round.

    Attributes:
        server_round: the round (from 1).
        partition_id: the client's partition id.
        metrics: the reply's metric record as a plain dict (includes
            ``"num-examples"``).
    """

    server_round: int
    partition_id: int
    metrics: dict[str, float]


@dataclass(frozen=True)
class FailedClient:
    """A sampled client whose training request failed in a round.

    Attributes:
        partition_id: the client's partition id (None if its node is unknown).
        reason: Flower's error reason, or that no reply came within the round timeout.
    """

    partition_id: int | None
    reason: str


ReplyCallback = Callable[[list[ClientReply], list[FailedClient]], None]
"""Called with the round's valid replies (by partition id) and its failed clients."""

RoundConfigCallback = Callable[[int], dict]
"""Called with the round number before clients are sampled; returns extra train-config entries."""

ReleaseCallback = Callable[[int, int], None]
"""Called with the round and the number of updates averaged, whenever a new global model is released."""

UpdatesCallback = Callable[[Any, dict[int, Any], Any], None]
"""Called after each round's aggregation with the model the clients started from, each trained
client's returned weights by partition id (Flower ``ArrayRecord`` s) and the released model (None
if nothing was released): what a white-box auditor on the server sees."""

TIMEOUT_REASON = "no reply within federation.round-timeout"
"""The :attr:`FailedClient.reason` of a sampled client that sent no reply in time."""

WEIGHT_KEY = "weight"
"""Reply metric FedAvg weights by: ``num-examples``, 1 under user-level DP, 0 for a skipped client."""


def is_skipped(metrics: Mapping) -> bool:
    """Whether a reply comes from a client that did not train (privacy budget spent).

    Args:
        metrics: the reply's metrics; ``"skipped"`` is 1 for a skipped client (absent: 0).

    Returns:
        True for a skipped client.

    Example:
        >>> is_skipped({"skipped": 1}), is_skipped({"num-examples": 5})
        (True, False)
    """
    return bool(int(metrics.get("skipped", 0)))


def is_aggregated(metrics: Mapping) -> bool:
    """Whether a reply's arrays enter the average: it trained and has a positive ``weight``.

    Args:
        metrics: the reply's metrics (``"skipped"`` and :data:`WEIGHT_KEY`; absent weight: 1).

    Returns:
        True if the reply is averaged.

    Example:
        >>> is_aggregated({"weight": 3}), is_aggregated({"weight": 0}), is_aggregated({"skipped": 1})
        (True, False, False)
    """
    return not is_skipped(metrics) and float(metrics.get(WEIGHT_KEY, 1)) > 0
