"""summary.json: its exact layout, the typed round trip, failed audits and files from earlier versions."""

import json
from dataclasses import replace

import pytest

from fedsim.results import (
    AttackResult,
    AuditSummary,
    CanaryResult,
    TierSummary,
    load_run,
    save_run,
    summary_from_json,
    summary_to_json,
)
from fedsim.results.store import RunDirError
from tests.results.test_store import sample_result, with_summary

LAYOUT = [
    "scenario",
    "dataset",
    "model",
    "partitioner",
    "num_clients",
    "rounds_completed",
    "final_accuracy",
    "final_loss",
    "diverged",
    "baseline_accuracy",
    "train_examples",
    "test_examples",
    "num_classes",
    "class_names",
    "client_users",
    "rounds_planned",
    "stop_reason",
    "privacy_mode",
    "accountant",
    "delta",
    "epsilon_max",
    "epsilon_mean",
    "target_epsilon",
    "tiers",
    "calibrate_for",
    "max_grad_norm",
    "grad_sample_mode",
    "clients_stopped",
    "user_epsilon",
    "user_budget_exceeded",
    "user_target_epsilon",
    "user_noise_multiplier",
    "client_sample_rate",
    "clipping",
    "clip_on",
    "secure_aggregation",
    "cohort_sampling",
    "user_epsilon_exact",
    "user_epsilon_replace_one",
    "audit",
    "seed",
    "wall_s",
    "resumed_from_round",
    "environment",
    "strategy",
    "status",
]
"""Every key of summary.json, in the order fedsim writes them (tests and saved runs read them)."""

LIRA = AttackResult("lira", 0.7, 0.1, 0.02, 1.5, 1e-5, 0.975, 200, 200)
AUDIT = AuditSummary(
    members=200,
    nonmembers=200,
    confidence=0.95,
    delta=1e-5,
    shadow_models=4,
    shadow_training="centrally, 2 epochs",
    notes=("a note",),
    audit_s=3.5,
    attacks=(replace(LIRA, attack="loss", auc=0.6), LIRA),
    canaries=(
        CanaryResult(
            "dirac", "white-box, final model", 1000, 498, 100, 90, 1.25, 8.0, "example", 1e-5, 0.975
        ),
        CanaryResult(
            "dirac", "white-box, every round", 1000, 498, 200, 199, 4.5, 2.0, "example", 1e-5, 0.975
        ),
    ),
)


def full_summary():
    return with_summary(
        sample_result().summary,
        privacy_mode="sample",
        delta=1e-5,
        tiers=(TierSummary("low", 0.5, 1.0), TierSummary("high", 0.5, 4.0)),
        class_names=(" ", "a"),
        client_users=("Ge", "Ex"),
        environment={"python": "3.11", "cpus": 2},
        audit=AUDIT,
    )


def test_summary_json_keeps_its_layout(tmp_path):
    # Arrange
    result = sample_result()
    result.summary = full_summary()
    # Act
    saved = json.loads((save_run(result, tmp_path / "run") / "summary.json").read_text())
    # Assert
    assert list(saved) == LAYOUT
    assert saved["tiers"] == [
        {"name": "low", "share": 0.5, "target_epsilon": 1.0},
        {"name": "high", "share": 0.5, "target_epsilon": 4.0},
    ]
    assert list(saved["audit"]) == [
        "members",
        "nonmembers",
        "confidence",
        "delta",
        "shadow_models",
        "shadow_training",
        "notes",
        "audit_s",
        "attacks",
        "canaries",
        "epsilon_exceeded",
    ]
    assert saved["audit"]["canaries"][1] == {
        "attack": "dirac",
        "threat_model": "white-box, every round",
        "canaries": 1000,
        "included": 498,
        "guesses": 200,
        "correct": 199,
        "epsilon_lower_bound": 4.5,
        "epsilon": 2.0,
        "unit": "example",
        "delta": 1e-5,
        "confidence": 0.975,
        "ratio": 2.25,
        "exceeds": True,
    }
    assert saved["audit"]["canaries"][0]["exceeds"] is False
    assert saved["audit"]["epsilon_exceeded"] is True
    assert saved["audit"]["attacks"][1] == {
        "attack": "lira",
        "auc": 0.7,
        "tpr_at_1pct_fpr": 0.1,
        "tpr_at_01pct_fpr": 0.02,
        "epsilon_lower_bound": 1.5,
        "delta": 1e-5,
        "confidence": 0.975,
        "num_members": 200,
        "num_nonmembers": 200,
    }
    assert saved["class_names"] == [" ", "a"] and saved["status"] == "complete"


def test_typed_round_trip(tmp_path):
    # Arrange
    result = sample_result()
    result.summary = full_summary()
    # Act
    loaded = load_run(save_run(result, tmp_path / "run"))
    # Assert
    assert loaded.summary == result.summary
    assert summary_from_json(summary_to_json(result.summary)) == result.summary


def test_a_failed_audit_writes_only_its_error():
    # Arrange
    summary = with_summary(sample_result().summary, audit=AuditSummary.failed("the audit failed: E: x"))
    # Act
    entry = summary_to_json(summary)["audit"]
    # Assert
    assert entry == {"error": "the audit failed: E: x", "attacks": []}
    assert summary_from_json(summary_to_json(summary)).audit == summary.audit


def test_summary_of_an_earlier_version_reads_with_defaults():
    # Arrange: the keys of fedsim's first summary.json
    first = {
        "scenario": "s",
        "dataset": "digits",
        "model": "cnn",
        "partitioner": "iid",
        "num_clients": 3,
        "rounds_completed": 3,
        "final_accuracy": 0.9,
        "final_loss": 0.3,
        "privacy_mode": "sample",
        "epsilon_max": 2.0,
        "epsilon_mean": 1.9,
        "target_epsilon": 2.0,
        "delta": 1e-5,
        "accountant": "rdp",
        "max_grad_norm": 1.0,
        "seed": 0,
        "wall_s": 12.0,
        "environment": {"python": "3.11"},
        "status": "complete",
    }
    # Act
    summary = summary_from_json(first)
    # Assert
    assert summary.privacy.epsilon_max == 2.0 and summary.privacy.secure_aggregation is False
    assert summary.audit is None and summary.diverged is False and summary.stop_reason is None


def test_summary_without_a_required_key_is_named(tmp_path):
    # Arrange
    out = save_run(sample_result(), tmp_path / "run")
    saved = json.loads((out / "summary.json").read_text())
    del saved["final_accuracy"]
    (out / "summary.json").write_text(json.dumps(saved))
    # Act / Assert
    with pytest.raises(RunDirError, match="summary.json: malformed .*final_accuracy"):
        load_run(out)
