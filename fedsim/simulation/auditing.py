"""Auditing a finished run: the membership-inference audit of its final global model (:mod:`fedsim.audit`)."""

from __future__ import annotations

import numpy as np

from fedsim.audit import ShadowFederation, run_audit
from fedsim.models import build_model
from fedsim.privacy import cohort_size
from fedsim.simulation.client_app import get_device


def audit_run(specs, *, model, train_set, test_set, parts, clients, rounds: int) -> dict | None:
    """The ``audit`` entry of a run's summary (None if the audit is disabled or no client trained).

    Members are drawn from the clients that trained at least once. LiRA's shadow
    models are trained, without DP, by FedAvg over IID clients with the run's
    client count, ``rounds`` rounds, cohort size and local training.

    Args:
        specs: the run's :class:`fedsim.simulation.scenario.ScenarioSpecs`.
        model: the final global model.
        train_set: the training set (``parts`` index it).
        test_set: the test set (the non-members).
        parts: each client's row indices into ``train_set``.
        clients: the run's :class:`fedsim.results.ClientRecord` list.
        rounds: rounds completed.

    Returns:
        :func:`fedsim.audit.run_audit`'s summary, or ``{"error": ..., "attacks": []}``
        if the audit failed: a finished run is never lost to its audit.
    """
    audit = specs.audit
    trained = [c for c in clients if c.rounds_trained > 0]
    if not audit.enabled or not trained:
        return None
    fed = specs.federation
    try:
        return run_audit(
            model,
            member_pool=train_set.subset(np.concatenate([parts[c.client] for c in trained])),
            test_set=test_set,
            spec=audit,
            delta=specs.privacy.target_delta,
            device=get_device(),
            model_factory=lambda seed: build_model(
                specs.model,
                input_shape=train_set.input_shape,
                num_classes=train_set.num_classes,
                vocab_size=train_set.vocab_size,
                seed=seed,
            ),
            train=specs.train,
            federation=ShadowFederation(
                num_clients=fed.num_clients,
                rounds=max(rounds, 1),
                clients_per_round=cohort_size(fed.num_clients, fed.fraction_train),
            ),
        )
    except Exception as err:  # noqa: BLE001 - the audit must never lose a finished run
        return {"error": f"the audit failed: {type(err).__name__}: {err}", "attacks": []}
