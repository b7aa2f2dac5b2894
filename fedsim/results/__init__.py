"""Run results: plain records (a leaf anyone may import), the run summary and their files."""

from fedsim.results.records import (
    AttackResult,
    AuditSummary,
    CanaryResult,
    ClientRecord,
    PrivacySummary,
    RoundRecord,
    RunResult,
    RunSummary,
    TierSummary,
    sweep_run_columns,
)
from fedsim.results.store import load_run, save_run
from fedsim.results.summary_json import summary_from_json, summary_to_json

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
    "load_run",
    "save_run",
    "summary_from_json",
    "summary_to_json",
    "sweep_run_columns",
]
