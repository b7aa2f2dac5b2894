"""Plain result records: the leaf of the package that any layer may import.

Per round (:class:`RoundRecord`), per client (:class:`ClientRecord`), the run's
summary (:mod:`fedsim.results.summary`, re-exported here) and the whole run
(:class:`RunResult`), plus the column names of a sweep's ``runs.csv``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fedsim.results.summary import (
    AttackResult,
    AuditSummary,
    CanaryResult,
    PrivacySummary,
    RunSummary,
    TierSummary,
)


@dataclass(frozen=True)
class RoundRecord:
    """The global model after one round (round 0: the initial model).

    Attributes:
        round: server round, 0 for the initial model.
        accuracy: test accuracy of the global model, in ``[0, 1]``.
        loss: mean test cross-entropy (nats per example).
        epsilon_max: largest ε over clients after this round (None without DP).
        epsilon_mean: mean ε over clients that have trained (None without DP).
        clients_trained: clients whose update was aggregated this round.
        clients_failed: clients whose training failed this round.
        train_loss: example-weighted mean local training loss (None in round 0).
        round_s: wall seconds of the round (training, aggregation, evaluation).
        clients_skipped: sampled clients that did not train: their sample-level
            budget could not pay for another round.
        noise_multiplier: mean DP-SGD σ of the clients that trained (None without
            sample-level DP or when none trained).
        max_grad_norm: DP-SGD per-sample clipping norm (None without sample-level DP).
        user_noise_multiplier: the noise multiplier this round's user-level release
            really had (see :func:`fedsim.privacy.release_noise_multiplier`; None
            without user-level DP).
        clipping_norm: user-level clipping norm the updates were clipped to (None without).
        user_epsilon: user-level ε after this round (None without user-level DP).
        failed_clients: partition ids of the sampled clients that failed this round
            (an error, or no reply within the round timeout), space-separated; ``?``
            for a client whose id is unknown (SecAgg+'s legacy path); None if none failed.
        test_examples: test examples ``accuracy`` and ``loss`` were measured on (the
            whole test set, or between the first and last round the subset of
            ``evaluation.round-examples``); None in records written before fedsim kept it.
    """

    round: int
    accuracy: float
    loss: float
    epsilon_max: float | None
    epsilon_mean: float | None
    clients_trained: int
    clients_failed: int
    train_loss: float | None
    round_s: float
    clients_skipped: int = 0
    noise_multiplier: float | None = None
    max_grad_norm: float | None = None
    user_noise_multiplier: float | None = None
    clipping_norm: float | None = None
    user_epsilon: float | None = None
    failed_clients: str | None = None
    test_examples: int | None = None


@dataclass(frozen=True)
class ClientRecord:
    """One client at the end of the run.

    Attributes:
        client: partition id.
        examples: training examples the client holds.
        rounds_trained: rounds its update was aggregated in.
        epsilon: its composed ε at the run's δ (None without DP).
        noise_multiplier: σ it trained with (None without DP or if it never trained).
        sample_rate: its Poisson sampling rate q (None without DP or if it never trained).
        tier: its budget tier's name (None without tiers).
        budget: its sample-level ε budget (None without one).
        stopped_round: the first round it was not allowed to train because that
            round would have exceeded its budget (None if never).
    """

    client: int
    examples: int
    rounds_trained: int
    epsilon: float | None
    noise_multiplier: float | None
    sample_rate: float | None
    tier: str | None = None
    budget: float | None = None
    stopped_round: int | None = None


@dataclass
class RunResult:
    """Everything a finished run produced, as written by :func:`fedsim.results.save_run`.

    Attributes:
        summary: headline figures (``summary.json``).
        rounds: one record per round, round 0 first.
        clients: one record per client, by partition id.
        scenario: the resolved scenario (kebab-case keys).
        label_counts: examples per (client, class), shape ``(clients, classes)``.
    """

    summary: RunSummary
    rounds: list[RoundRecord] = field(default_factory=list)
    clients: list[ClientRecord] = field(default_factory=list)
    scenario: dict[str, Any] = field(default_factory=dict)
    label_counts: list[list[int]] = field(default_factory=list)


SWEEP_RUN_FIGURES = ("mechanism", "final_accuracy", "epsilon_max", "user_epsilon", "delta")
"""``runs.csv`` columns after ``run_id``, ``status`` and ``error``, before the attacks' AUCs."""
SWEEP_RUN_AUDIT = (
    "tpr_at_1pct_fpr",
    "tpr_at_01pct_fpr",
    "epsilon_lower_bound",
    "canary_epsilon",
    "canary_ratio",
    "canary_exceeds",
    "rounds_completed",
    "median_round_s",
    "wall_s",
)
"""``runs.csv`` columns after the AUCs: the strongest attack's TPRs, the largest ε lower bound, the
canary audit's largest ε̂ with its ratio to the accountant's ε and whether any ε̂ exceeded it, time."""


def sweep_run_columns(attacks: Iterable[str]) -> tuple[str, ...]:
    """The figure columns of a sweep's ``runs.csv`` (each run's axis labels come after ``run_id``).

    A sweep axis may not take one of these names.

    Args:
        attacks: the attacks' names in run order (:func:`fedsim.audit.available_attacks`);
            each gets a column ``auc_<name>``.

    Returns:
        The column names, in ``runs.csv``'s order.

    Example:
        >>> sweep_run_columns(["loss", "lira"])[6:10]
        ('user_epsilon', 'delta', 'auc_loss', 'auc_lira')
    """
    return ("run_id", "status", "error", *SWEEP_RUN_FIGURES, *(f"auc_{a}" for a in attacks), *SWEEP_RUN_AUDIT)


__all__ = [
    "AttackResult",
    "AuditSummary",
    "CanaryResult",
    "ClientRecord",
    "PrivacySummary",
    "RoundRecord",
    "RunResult",
    "RunSummary",
    "TierSummary",
    "sweep_run_columns",
]
