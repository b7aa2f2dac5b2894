"""The end of a run: each client's record, the audit of the final model, and the typed summary."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from fedsim.audit import ShadowFederation, run_audit
from fedsim.audit.canary_audit import canary_results, dirac_scores, input_scores
from fedsim.data import dataset_info
from fedsim.models import build_model
from fedsim.results import AuditSummary, ClientRecord, PrivacySummary, RunSummary, TierSummary
from fedsim.simulation.backend import run_environment
from fedsim.simulation.client_app import get_device
from fedsim.simulation.session import RunSession
from fedsim.simulation.spec import RunSpec

if TYPE_CHECKING:  # commands.run imports this module
    from fedsim.commands.run import Prepared


def client_records(spec: RunSpec, session: RunSession, *, sizes: list[int]) -> list[ClientRecord]:
    """One :class:`ClientRecord` per client: its data size, rounds trained, ε, σ, q, tier and budget."""
    privacy, budget, n = session.privacy, spec.privacy, spec.federation.num_clients
    tiers = budget.client_tiers(n, seed=spec.seed)
    budgets = budget.client_budgets(n, seed=spec.seed)
    stopped = privacy.guard.stopped_round if privacy.guard is not None else {}
    records = []
    for pid, examples in enumerate(sizes):
        epsilon, sigma, rate = privacy.client_history(pid) if privacy.ledger is not None else (None,) * 3
        records.append(
            ClientRecord(
                client=pid,
                examples=examples,
                rounds_trained=session.recorder.rounds_trained.get(pid, 0),
                epsilon=epsilon,
                noise_multiplier=sigma,
                sample_rate=rate,
                tier=tiers[pid],
                budget=budgets[pid] if privacy.ledger is not None else None,
                stopped_round=stopped.get(pid),
            )
        )
    return records


def audit_final_model(
    spec: RunSpec, *, model: torch.nn.Module, data: Prepared, clients: list[ClientRecord], rounds: int
):
    """The audit of the final global model (None if disabled or no client trained).

    Members are drawn from the clients that trained at least once. LiRA's shadow
    models are trained, without DP, by FedAvg over IID clients with the run's
    client count, ``rounds`` rounds, cohort size and local training.

    Returns:
        :func:`fedsim.audit.run_audit`'s :class:`AuditSummary`, or one holding only the
        error if the audit failed: a finished run is never lost to its audit.
    """
    trained = [c for c in clients if c.rounds_trained > 0]
    if not spec.audit.enabled or not trained:
        return None
    train_set, fed = data.train_set, spec.federation
    try:
        return run_audit(
            model,
            member_pool=train_set.subset(np.concatenate([data.parts[c.client] for c in trained])),
            test_set=data.test_set,
            spec=spec.audit,
            delta=spec.privacy.target_delta,
            device=get_device(),
            model_factory=lambda seed: build_model(
                spec.model,
                input_shape=train_set.input_shape,
                num_classes=train_set.num_classes,
                vocab_size=train_set.vocab_size,
                seed=seed,
            ),
            train=spec.train,
            federation=ShadowFederation(
                num_clients=fed.num_clients, rounds=max(rounds, 1), clients_per_round=fed.cohort_size
            ),
        )
    except Exception as err:  # noqa: BLE001 - the audit must never lose a finished run
        return AuditSummary.failed(f"the audit failed: {type(err).__name__}: {err}")


def with_canary_audit(
    audit: AuditSummary | None, spec: RunSpec, session: RunSession, data: Prepared
) -> AuditSummary | None:
    """``audit`` with the canary audit's results (:func:`fedsim.audit.canary_audit.canary_results`).

    The white-box Dirac canaries are scored from what the server saw
    (``session.canaries``), the black-box input canaries by the final model's loss
    (``data.input_canaries``). The accountant's ε is the sample-level one (the largest
    over clients), None without DP (the scenario refuses example-level canaries under
    user-level DP alone). A failed canary audit becomes a note: a finished run is never
    lost to its audit.
    """
    inputs = data.input_canaries
    if audit is None or audit.error is not None or (session.canaries is None and inputs is None):
        return audit
    budget = spec.privacy
    epsilon = session.recorder.rounds[-1].epsilon_max if budget.is_sample_level else None
    try:
        scored = dirac_scores(session.canaries) if session.canaries is not None else []
        if inputs is not None:
            examples = inputs.examples(data.full_test_set)
            scored.append(input_scores(session.recorder.model, inputs, examples, device=get_device()))
        results = canary_results(
            scored,
            epsilon=epsilon,
            unit="example",
            delta=budget.target_delta,
            confidence=spec.audit.confidence,
        )
    except Exception as err:  # noqa: BLE001 - the audit must never lose a finished run
        return replace(audit, notes=(*audit.notes, f"the canary audit failed: {type(err).__name__}: {err}"))
    return replace(audit, canaries=results)


def privacy_summary(spec: RunSpec, session: RunSession) -> PrivacySummary:
    """The privacy figures of ``summary.json``: mode, accountant, both levels' settings and ε."""
    budget, final, run = spec.privacy, session.recorder.rounds[-1], session.privacy
    sample, user, on = budget.is_sample_level, budget.user_level, budget.mode != "none"
    exceeded = None
    if user and user.target_epsilon is not None and final.user_epsilon is not None:
        exceeded = final.user_epsilon > user.target_epsilon
    return PrivacySummary(
        privacy_mode=budget.mode,
        accountant=budget.accountant if on else None,
        delta=budget.target_delta if on else None,
        epsilon_max=final.epsilon_max,
        epsilon_mean=final.epsilon_mean,
        target_epsilon=budget.target_epsilon if sample else None,
        tiers=tuple(TierSummary(t.name, t.share, t.target_epsilon) for t in budget.tiers) if sample else None,
        calibrate_for=budget.calibrate_for if sample else None,
        max_grad_norm=budget.max_grad_norm if sample else None,
        grad_sample_mode=spec.dp_sgd.grad_sample_mode if sample else None,
        clients_stopped=len(run.guard.stopped_round) if run.guard is not None else None,
        user_epsilon=final.user_epsilon,
        user_budget_exceeded=exceeded,
        user_target_epsilon=user.target_epsilon if user else None,
        user_noise_multiplier=run.user.noise_multiplier if run.user else None,
        client_sample_rate=run.user.sample_rate if run.user else None,
        clipping=user.clipping if user else None,
        clip_on=user.clip_on if user else None,
        secure_aggregation=spec.federation.secure_aggregation,
        cohort_sampling=run.user.cohort_sampling if run.user else None,
        user_epsilon_exact=run.user.exact if run.user else None,
        user_epsilon_replace_one=run.user_epsilon_replace_one(),
    )


def build_summary(
    spec: RunSpec,
    *,
    session: RunSession,
    data: Prepared,
    clients: list[ClientRecord],
    wall_s: Callable[[], float],
    resumed_from_round: int | None,
) -> RunSummary:
    """The run's typed summary (``summary.json``), with the audit of its final model.

    Args:
        spec: the run.
        session: the finished run's round records and privacy accounting.
        data: the run's :class:`fedsim.commands.run.Prepared` data.
        clients: the run's client records.
        wall_s: the run's wall seconds so far (read after the audit, which it includes).
        resumed_from_round: the checkpoint's round of a resumed run, or None.
    """
    rounds = session.recorder.rounds
    audit = audit_final_model(
        spec, model=session.recorder.model, data=data, clients=clients, rounds=max(r.round for r in rounds)
    )
    audit = with_canary_audit(audit, spec, session, data)
    final, completed = rounds[-1], max(r.round for r in rounds)
    train_set = data.train_set
    return RunSummary(
        scenario=spec.name,
        dataset=spec.data.dataset,
        model=spec.model.name,
        strategy=spec.federation.strategy,
        partitioner=spec.partition.name,
        num_clients=spec.federation.num_clients,
        rounds_completed=completed,
        final_accuracy=final.accuracy,
        final_loss=final.loss,
        diverged=not math.isfinite(final.loss),
        baseline_accuracy=data.test_set.baseline_accuracy(),
        train_examples=int(sum(data.sizes)),
        test_examples=len(data.test_set),
        num_classes=train_set.num_classes,
        class_names=list(train_set.vocab) if train_set.vocab is not None else _class_names(spec, train_set),
        client_users=(
            [train_set.group_names[int(train_set.groups[p[0]])] for p in data.parts]
            if spec.partition.name == "natural-id"
            else None
        ),
        rounds_planned=spec.federation.rounds,
        stop_reason=session.privacy.stop_reason,
        privacy=privacy_summary(spec, session),
        audit=audit,
        seed=spec.seed,
        wall_s=wall_s(),
        resumed_from_round=resumed_from_round,
        environment=run_environment(),
    )


def _class_names(spec: RunSpec, train_set) -> list[str] | None:
    """The data set's published label names, if it has them and its labels match them in number."""
    names = dataset_info(spec.data.dataset).class_names
    return list(names) if names is not None and len(names) == train_set.num_classes else None
