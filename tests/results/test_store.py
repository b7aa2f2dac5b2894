import csv
import json
from dataclasses import fields, replace

import pytest

from fedsim.results import (
    ClientRecord,
    PrivacySummary,
    RoundRecord,
    RunResult,
    RunSummary,
    TierSummary,
    load_run,
    save_run,
)
from fedsim.results.store import RunDirError

PRIVACY_KEYS = frozenset(f.name for f in fields(PrivacySummary))


def with_summary(summary: RunSummary, **keys) -> RunSummary:
    """``summary`` with some of ``summary.json``'s (flat) keys replaced (privacy keys in its ``privacy``)."""
    privacy = {k: v for k, v in keys.items() if k in PRIVACY_KEYS}
    rest = {k: v for k, v in keys.items() if k not in PRIVACY_KEYS}
    return replace(summary, privacy=replace(summary.privacy, **privacy), **rest)


def sample_summary() -> RunSummary:
    """A small run's summary: accuracy 0.5, ε 1.5, every optional figure None."""
    privacy = PrivacySummary(**{name: None for name in PRIVACY_KEYS})
    privacy = replace(privacy, privacy_mode="none", epsilon_max=1.5, secure_aggregation=False)
    return RunSummary(
        scenario="t",
        dataset="digits",
        model="cnn",
        partitioner="iid",
        num_clients=2,
        rounds_completed=1,
        final_accuracy=0.5,
        final_loss=1.2,
        diverged=False,
        baseline_accuracy=None,
        train_examples=None,
        test_examples=None,
        num_classes=None,
        class_names=None,
        client_users=None,
        rounds_planned=None,
        stop_reason=None,
        privacy=privacy,
        audit=None,
        seed=0,
        wall_s=3.0,
        resumed_from_round=None,
        environment=None,
    )


def sample_result():
    return RunResult(
        summary=sample_summary(),
        rounds=[
            RoundRecord(0, 0.1, 2.3, 0.0, 0.0, 0, 0, None, 0.0),
            RoundRecord(1, 0.5, 1.2, 1.5, 1.4, 2, 0, 1.3, 2.5),
        ],
        clients=[ClientRecord(0, 10, 1, 1.5, 1.1, 0.1), ClientRecord(1, 12, 1, 1.3, 1.1, 0.1)],
        scenario={"name": "t", "seed": 0, "data": {"dataset": "digits"}},
        label_counts=[[5, 5], [6, 6]],
    )


def test_round_trip(tmp_path):
    # Arrange / Act
    out = save_run(sample_result(), tmp_path / "run")
    loaded = load_run(out)
    # Assert
    assert loaded.rounds == sample_result().rounds
    assert loaded.clients == sample_result().clients
    assert loaded.scenario == sample_result().scenario
    assert loaded.label_counts == [[5, 5], [6, 6]]
    assert json.loads((out / "summary.json").read_text())["status"] == "complete"
    header = (out / "rounds.csv").read_text().splitlines()[0]
    assert (
        header
        == "round,accuracy,loss,epsilon_max,epsilon_mean,clients_trained,clients_failed,train_loss,round_s,"
        "clients_skipped,noise_multiplier,max_grad_norm,user_noise_multiplier,clipping_norm,user_epsilon,failed_clients,"
        "test_examples"
    )
    assert (
        (out / "clients.csv").read_text().splitlines()[0].startswith("client,examples,rounds_trained,epsilon")
    )


def test_replaces_previous_run_but_not_foreign_folder(tmp_path):
    save_run(sample_result(), tmp_path / "run")
    save_run(sample_result(), tmp_path / "run")  # a fedsim run: replaced
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(RunDirError, match="not empty and not a complete fedsim run"):
        save_run(sample_result(), foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "run"]  # no temp folders left


def test_failed_write_leaves_nothing_marked_complete(tmp_path):
    bad = sample_result()
    bad.summary = replace(
        bad.summary, environment={"not_json": object()}
    )  # json.dumps fails before any rename
    with pytest.raises(TypeError):
        save_run(bad, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert list(tmp_path.iterdir()) == []


def test_incomplete_run_is_refused(tmp_path):
    out = save_run(sample_result(), tmp_path / "run")
    (out / "rounds.csv").unlink()
    with pytest.raises(RunDirError, match="missing rounds.csv"):
        load_run(out)


def test_folder_with_a_user_scenario_toml_is_not_a_run(tmp_path):
    # A folder holding the user's own scenario.toml (and notes) must never be replaced.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "scenario.toml").write_text('name = "x"\n')
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(RunDirError, match="not a complete fedsim run"):
        save_run(sample_result(), mine)
    assert (mine / "notes.txt").read_text() == "keep"


def test_unwritable_parent_is_refused_before_running(tmp_path):
    from fedsim.results.store import check_writable_run_dir

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(RunDirError, match="cannot write here"):
        check_writable_run_dir(blocker / "run")


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda out: (out / "summary.json").write_text("{bad"),
            "unreadable or does not mark the run complete",
        ),
        (lambda out: (out / "rounds.csv").write_text("a,b\n1,2\n"), "rounds.csv: columns"),
        (
            lambda out: (out / "clients.csv").write_text((out / "clients.csv").read_text() + "x,y\n"),
            "malformed",
        ),
    ],
)
def test_corrupt_run_files_are_named(tmp_path, damage, message):
    out = save_run(sample_result(), tmp_path / "run")
    damage(out)
    with pytest.raises(RunDirError, match=message):
        load_run(out)


def test_run_folder_is_not_private(tmp_path):
    out = save_run(sample_result(), tmp_path / "run")
    assert out.stat().st_mode & 0o777 == 0o777 & ~_umask()  # as mkdir would make it, not mkdtemp's 0700


def _umask():
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_non_finite_summary_values_are_written_as_null(tmp_path):
    diverged = sample_result()
    diverged.summary = with_summary(
        diverged.summary,
        final_loss=float("nan"),
        epsilon_max=float("inf"),
        tiers=(TierSummary("a", 1.0, float("nan")),),
    )
    out = save_run(diverged, tmp_path / "run")
    loaded, saved = load_run(out), json.loads((out / "summary.json").read_text())
    assert saved["final_loss"] is None and saved["epsilon_max"] is None
    assert saved["tiers"] == [{"name": "a", "share": 1.0, "target_epsilon": None}]
    assert loaded.summary.final_loss is None and loaded.summary.privacy.epsilon_max is None
    assert loaded.summary.privacy.tiers == (TierSummary("a", 1.0, None),)


def test_a_run_saved_before_the_test_examples_column_still_loads(tmp_path):
    # Arrange: a complete run whose rounds.csv has the columns fedsim wrote before test_examples
    out = tmp_path / "run"
    save_run(sample_result(), out)
    path = out / "rounds.csv"
    rows = list(csv.reader(path.read_text().splitlines()))
    assert rows[0][-1] == "test_examples"
    path.write_text("\n".join(",".join(r[:-1]) for r in rows) + "\n")
    # Act
    loaded = load_run(out)
    # Assert: the same records, with no test-example count
    assert [r.test_examples for r in loaded.rounds] == [None] * len(loaded.rounds)
    assert [replace(r, test_examples=None) for r in sample_result().rounds] == loaded.rounds
    # a file missing a column that has no default is still refused
    path.write_text("\n".join(",".join(r[:3]) for r in rows) + "\n")
    with pytest.raises(RunDirError, match="columns"):
        load_run(out)
