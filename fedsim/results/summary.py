"""A finished run's headline figures as plain frozen dataclasses: ``summary.json``, typed.

:class:`RunSummary` holds the run, :class:`PrivacySummary` its privacy settings
and ε, :class:`AuditSummary` its membership-inference audit, one
:class:`AttackResult` per attack. Like :mod:`fedsim.results.records`, this is a
leaf any layer may import; :mod:`fedsim.results.summary_json` is the one place
that converts them to and from ``summary.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AttackResult:
    """One membership-inference attack's success on one model.

    Attributes:
        attack: the attack's name, e.g. ``"loss"`` or ``"lira"`` (:mod:`fedsim.audit.registry`).
        auc: area under the ROC curve in ``[0, 1]`` (0.5 = guessing).
        tpr_at_1pct_fpr: largest true-positive rate whose false-positive rate is
            ≤ 1 %, in ``[0, 1]``.
        tpr_at_01pct_fpr: the same at false-positive rate ≤ 0.1 %. With ``n``
            non-members the smallest non-zero FPR is ``1/n``, so with fewer than
            1000 non-members this is the TPR at FPR 0.
        epsilon_lower_bound: empirical ε lower bound (≥ 0) for one example at
            ``delta``, holding with probability ≥ ``confidence`` under the
            independence heuristic of :mod:`fedsim.audit.metrics`.
        delta: the δ of ``epsilon_lower_bound``, in ``[0, 1)``.
        confidence: the confidence level of ``epsilon_lower_bound``, in ``(0, 1)``.
        num_members: member examples scored.
        num_nonmembers: non-member examples scored.
    """

    attack: str
    auc: float
    tpr_at_1pct_fpr: float
    tpr_at_01pct_fpr: float
    epsilon_lower_bound: float
    delta: float
    confidence: float
    num_members: int
    num_nonmembers: int


@dataclass(frozen=True)
class CanaryResult:
    """One canary audit of one run: the ε lower bound it shows beside the ε the accountant claims.

    Attributes:
        attack: the canaries' kind, e.g. ``"dirac"`` (:mod:`fedsim.audit.canaries`).
        threat_model: what the auditor scored, e.g. ``"white-box, final model"``.
        canaries: ``m``, canaries planted (each included by a fair coin).
        included: how many of them the coins included.
        guesses: ``r``, the guesses of the best guess count (half "in", half "out").
        correct: ``v``, the correct ones.
        epsilon_lower_bound: ε̂ in nats, holding with probability ≥ ``confidence``
            (Steinke et al. 2023, https://arxiv.org/abs/2305.08846; :mod:`fedsim.audit.one_run`).
        epsilon: the accountant's ε for the same unit of privacy at ``delta``
            (None without DP: nothing to compare with).
        unit: the unit of privacy ``epsilon`` protects: ``"example"`` or ``"client"``.
        delta: the δ of both figures.
        confidence: the confidence level of ``epsilon_lower_bound``.
    """

    attack: str
    threat_model: str
    canaries: int
    included: int
    guesses: int
    correct: int
    epsilon_lower_bound: float
    epsilon: float | None
    unit: str
    delta: float
    confidence: float

    @property
    def ratio(self) -> float | None:
        """ε̂ / ε (None without an accountant ε, or when it is 0)."""
        return self.epsilon_lower_bound / self.epsilon if self.epsilon else None

    @property
    def exceeds(self) -> bool:
        """Whether ε̂ > ε: the mechanism or its accounting is broken (or a 1 − confidence chance)."""
        return self.epsilon is not None and self.epsilon_lower_bound > self.epsilon


@dataclass(frozen=True)
class AuditSummary:
    """The membership-inference audit of a run's final global model (:func:`fedsim.audit.run_audit`).

    A failed audit has only ``error`` (every other figure None, no attacks):
    see :meth:`failed`.

    Attributes:
        members: audited members (training examples of clients that trained).
        nonmembers: audited non-members (test examples), as many as members.
        confidence: joint confidence of every attack's ε lower bound, in (0.5, 1).
        delta: δ of the ε lower bounds (the run's δ).
        shadow_models: LiRA's shadow models (0: none trained).
        shadow_training: how the shadow models were trained, in words (None without them).
        notes: why an attack that applied was not run (e.g. LiRA when a shadow model diverged).
        audit_s: wall seconds the audit took.
        attacks: one result per attack that ran, in the registry's order.
        error: why the audit failed (then nothing else is set), or None.
        canaries: one result per canary audit (threat model), empty without canaries.
    """

    members: int | None
    nonmembers: int | None
    confidence: float | None
    delta: float | None
    shadow_models: int | None
    shadow_training: str | None
    notes: tuple[str, ...]
    audit_s: float | None
    attacks: tuple[AttackResult, ...]
    error: str | None = None
    canaries: tuple[CanaryResult, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "notes", tuple(self.notes))
        object.__setattr__(self, "attacks", tuple(self.attacks))
        object.__setattr__(self, "canaries", tuple(self.canaries))

    @classmethod
    def failed(cls, error: str) -> AuditSummary:
        """The summary of an audit that raised ``error`` (a finished run is never lost to its audit).

        Example:
            >>> AuditSummary.failed("the audit failed: ValueError: x").attacks
            ()
        """
        return cls(None, None, None, None, None, None, (), None, (), error=error)


@dataclass(frozen=True)
class TierSummary:
    """One sample-level budget tier as configured.

    Attributes:
        name: the tier's name.
        share: share of the clients in the tier, in (0, 1].
        target_epsilon: the tier's sample-level ε budget.
    """

    name: str
    share: float
    target_epsilon: float | None


@dataclass(frozen=True)
class PrivacySummary:
    """A run's privacy settings and the ε it spent (``summary.json``'s privacy keys, at its top level).

    Every figure is None where its level of DP was off.

    Attributes:
        privacy_mode: ``none``, ``sample``, ``user`` or ``both``.
        accountant: the privacy accountant, e.g. ``rdp`` (None without DP).
        delta: δ of every ε (None without DP).
        epsilon_max: largest sample-level ε over clients at the end (None if not finite).
        epsilon_mean: mean sample-level ε over clients that trained.
        target_epsilon: the sample-level ε budget.
        tiers: the sample-level budget tiers (None without sample-level DP; empty without tiers).
        calibrate_for: what the DP-SGD noise was calibrated for.
        max_grad_norm: DP-SGD per-sample clipping norm.
        grad_sample_mode: Opacus grad-sample mode.
        clients_stopped: clients whose sample-level budget ran out.
        user_epsilon: user-level ε at the end.
        user_budget_exceeded: whether the user-level ε passed its budget (client failures).
        user_target_epsilon: the user-level ε budget.
        user_noise_multiplier: nominal user-level noise multiplier z.
        client_sample_rate: user-level q, in (0, 1]: the cohort's share of all clients (fixed
            cohorts) or each client's probability of joining a round (Poisson sampling).
        cohort_sampling: ``fixed`` or ``poisson`` (None without user-level DP).
        user_epsilon_exact: whether ``user_epsilon`` is exact (Poisson sampling, adding or removing
            one client) or the Poisson approximation of fixed-size cohorts.
        user_epsilon_replace_one: fixed-size cohorts: a proved ε under replacing one client's data
            (dp_accounting's RDP bound for sampling without replacement); None otherwise.
        clipping: user-level clipping, ``fixed`` or ``adaptive``.
        clip_on: where updates are clipped, ``client`` or ``server``.
        secure_aggregation: whether SecAgg+ hid each update from the server.
    """

    privacy_mode: str
    accountant: str | None
    delta: float | None
    epsilon_max: float | None
    epsilon_mean: float | None
    target_epsilon: float | None
    tiers: tuple[TierSummary, ...] | None
    calibrate_for: str | None
    max_grad_norm: float | None
    grad_sample_mode: str | None
    clients_stopped: int | None
    user_epsilon: float | None
    user_budget_exceeded: bool | None
    user_target_epsilon: float | None
    user_noise_multiplier: float | None
    client_sample_rate: float | None
    clipping: str | None
    clip_on: str | None
    secure_aggregation: bool
    cohort_sampling: str | None = None
    user_epsilon_exact: bool | None = None
    user_epsilon_replace_one: float | None = None

    def __post_init__(self) -> None:
        if self.tiers is not None:
            object.__setattr__(self, "tiers", tuple(self.tiers))


@dataclass(frozen=True)
class RunSummary:
    """A finished run's headline figures (``summary.json``, less its ``status``).

    Figures that were not finite (a diverged loss, an infinite ε) are written as
    null, so they are None in a summary read back by :func:`fedsim.results.load_run`.

    Attributes:
        scenario: the scenario's name.
        dataset: the data set's name.
        model: the model's name.
        partitioner: how the training set was split among clients.
        num_clients: clients in the federation.
        rounds_completed: rounds run (the last round's number).
        final_accuracy: test accuracy of the final global model, in ``[0, 1]``.
        final_loss: its mean test cross-entropy (nats per example).
        diverged: whether ``final_loss`` is not finite.
        baseline_accuracy: test accuracy of always predicting the most frequent label.
        train_examples: training examples the clients hold in all.
        test_examples: examples of the test set.
        num_classes: classes (characters for text).
        class_names: each class's name (text: the characters), or None.
        client_users: each client's natural user (``natural-id`` split), or None.
        rounds_planned: rounds the scenario asked for.
        stop_reason: why the run stopped before ``rounds_planned`` (None if it did not).
        privacy: privacy settings and ε (flattened into ``summary.json``'s top level).
        audit: the membership-inference audit (None if it was not run).
        seed: the scenario's seed.
        wall_s: wall seconds of the run (summed over resumes).
        resumed_from_round: the checkpoint's round if the run was resumed, else None.
        environment: versions and hardware (name → value), or None.
        strategy: the server strategy (``federation.strategy``), or None in runs saved before it was recorded.
    """

    scenario: str
    dataset: str
    model: str
    partitioner: str
    num_clients: int
    rounds_completed: int
    final_accuracy: float
    final_loss: float | None
    diverged: bool
    baseline_accuracy: float | None
    train_examples: int | None
    test_examples: int | None
    num_classes: int | None
    class_names: tuple[str, ...] | None
    client_users: tuple[str, ...] | None
    rounds_planned: int | None
    stop_reason: str | None
    privacy: PrivacySummary
    audit: AuditSummary | None
    seed: int
    wall_s: float
    resumed_from_round: int | None
    environment: dict[str, Any] | None
    strategy: str | None = None

    def __post_init__(self) -> None:
        for name in ("class_names", "client_users"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(getattr(self, name)))
