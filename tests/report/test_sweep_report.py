"""The sweep report: means over seeds, the reference, failed runs, and figures equal to the CSVs."""

import csv
import json
import statistics

import pytest

from fedsim.report.sweep import render_sweep_report
from fedsim.results import AttackResult, AuditSummary, CanaryResult, save_run
from fedsim.results.store import RunDirError
from tests.results.test_store import sample_result, with_summary

AXES = [
    {"name": "privacy.target-epsilon", "labels": ["3", "inf"], "is_key": True, "touches_privacy": True},
    {"name": "seed", "labels": ["0", "1"], "is_key": True, "touches_privacy": False},
    {"name": "split", "labels": ["iid", "<b>dir</b>"], "is_key": False, "touches_privacy": False},
]


def run(tmp_path, run_id, *, accuracy, epsilon, auc, round_s, canary):
    result = sample_result()
    dirac = CanaryResult(
        "dirac", "white-box, final model", 1000, 500, 100, 90, canary, epsilon, "example", 1e-5, 0.975
    )
    loss = AttackResult(
        "loss", auc, 0.02, 0.0, 0.1, delta=1e-5, confidence=0.95, num_members=50, num_nonmembers=50
    )
    result.summary = with_summary(
        result.summary,
        scenario=run_id,
        final_accuracy=accuracy,
        epsilon_max=epsilon,
        user_epsilon=None,
        privacy_mode="sample" if epsilon else "none",
        num_clients=2,
        rounds_completed=2,
        wall_s=10.0,
        delta=1e-5,
        audit=AuditSummary(50, 50, 0.95, 1e-5, 0, None, (), 1.0, attacks=(loss,), canaries=(dirac,)),
    )
    result.rounds = [
        *result.rounds,
        type(result.rounds[1])(2, accuracy, 1.0, epsilon, epsilon, 2, 0, 1.0, round_s),
    ]
    save_run(result, tmp_path / "runs" / run_id)


@pytest.fixture
def sweep_dir(tmp_path):
    entries = []
    figures = {  # (ε label, seed): (accuracy, ε, AUC, round time, canary ε̂)
        ("3", "0"): (0.70, 2.9, 0.51, 4.0, 1.0),
        ("3", "1"): (0.74, 2.8, 0.53, 6.0, 3.5),  # above its ε: flagged
        ("inf", "0"): (0.80, None, 0.60, 2.0, 4.0),
        ("inf", "1"): (0.82, None, 0.62, 3.0, 4.2),
    }
    for (eps, seed), (acc, epsilon, auc, round_s, canary) in figures.items():
        run_id = f"target-epsilon-{eps}_seed-{seed}_split-iid"
        run(tmp_path, run_id, accuracy=acc, epsilon=epsilon, auc=auc, round_s=round_s, canary=canary)
        labels = {"privacy.target-epsilon": eps, "seed": seed, "split": "iid"}
        entries.append({"run_id": run_id, "labels": labels, "dir": f"runs/{run_id}", "status": "complete"})
    entries.append(
        {
            "run_id": "target-epsilon-3_seed-0_split-dir",
            "labels": {"privacy.target-epsilon": "3", "seed": "0", "split": "<b>dir</b>"},
            "dir": "runs/target-epsilon-3_seed-0_split-dir",
            "status": "failed",
        }
    )
    manifest = {
        "name": "sw<script>",
        "quick": False,
        "axes": AXES,
        "reference": {},
        "runs": entries,
        "status": "incomplete",
    }
    (tmp_path / "sweep.json").write_text(json.dumps(manifest))
    return tmp_path


def test_sweep_report_averages_seeds_against_the_reference(sweep_dir):
    # Act
    report = render_sweep_report(sweep_dir)
    # Assert: summary.csv holds the means the report shows
    with (sweep_dir / "summary.csv").open() as f:
        cells = {c["protection"]: c for c in csv.DictReader(f)}
    private, reference = cells["target-epsilon=3"], cells["target-epsilon=inf"]
    assert float(private["accuracy_mean"]) == pytest.approx(0.72)
    assert float(private["accuracy_sd"]) == pytest.approx(statistics.stdev([0.70, 0.74]))
    assert float(private["x_epsilon"]) == pytest.approx(2.85) and reference["x_epsilon"] == ""
    assert float(private["round_s"]) == pytest.approx(5.0)  # round 2's time: round 1 starts Ray
    assert float(private["canary_epsilon"]) == pytest.approx(2.25) and private["canary_exceeded"] == "1"
    assert float(reference["canary_epsilon"]) == pytest.approx(4.1) and reference["canary_exceeded"] == "0"
    text = report.read_text()
    assert "4 of 5 runs complete: **this sweep is incomplete**" in text
    assert "| target-epsilon=3 | sample-level DP | 2 | 72.00 ± 2.83 | -9.0 | 2.850 |" in text
    assert "accuracy 72.0 % against 81.0 %, -9.0 points; loss-attack AUC 0.520 against 0.610" in text
    assert "2.00× the round time (5.00 s against 2.50 s)" in text
    assert "| target-epsilon-3_seed-0_split-dir | 3 | 0 | \\<b>dir\\</b> | failed |" in text
    rows = list(csv.DictReader((sweep_dir / "runs.csv").open()))
    assert [r["status"] for r in rows].count("failed") == 1
    html = (sweep_dir / "report.html").read_text()
    assert "<script>" not in html and "&lt;b&gt;dir&lt;/b&gt;" in html
    assert "| 2.25 (1 of 2 runs above ε) |" in text and "## Canary audit" in text
    assert [r["canary_exceeds"] for r in rows if r["status"] == "complete"] == [
        "False",
        "True",
        "False",
        "False",
    ]
    assert html.count("data:image/png;base64,") == 4


def test_sweep_report_of_a_folder_without_sweep_json_is_an_error(tmp_path):
    with pytest.raises(RunDirError, match="not a fedsim sweep"):
        render_sweep_report(tmp_path)


def test_plots_show_dollar_signs_in_labels_as_typed(tmp_path):
    # Arrange: matplotlib would parse "$\foo$" as (invalid) mathtext
    from fedsim.report.canaries import CanaryPoint, plot_canaries
    from fedsim.report.sweep_data import Cell
    from fedsim.report.sweep_plots import plot_audit, plot_frontier

    cell = Cell(
        group="$\\foo$",
        protection="eps-$1",
        mechanism="sample-level DP",
        runs=1,
        accuracy_mean=0.5,
        accuracy_sd=0.0,
        epsilon=1.0,
        user_epsilon=None,
        auc={"loss": 0.5, "lira": None},
        tpr_1pct=0.01,
        epsilon_lb=0.0,
        canary_epsilon=0.5,
        canary_exceeded=0,
        round_s=1.0,
        wall_s=2.0,
    )
    point = CanaryPoint("eps-$1", 1.0, 0.5, False)
    # Act
    paths = [
        plot_frontier([cell], tmp_path / "f.png"),
        plot_audit([cell], tmp_path / "a.png"),
        plot_canaries([point, CanaryPoint("$\\x$", None, 2.0, False)], tmp_path / "c.png"),
    ]
    # Assert
    assert all(p.stat().st_size > 0 for p in paths)
