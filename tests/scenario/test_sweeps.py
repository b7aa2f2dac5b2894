"""Sweeps: a [sweep] table expands into validated runs; bad tables name the axis."""

import math
from pathlib import Path

import pytest

from fedsim.commands import scenario_or_sweep
from fedsim.scenario import ScenarioError
from fedsim.scenario.sweeps import expand_sweep

ROOT = Path(__file__).resolve().parents[2]

BASE = {
    "name": "sw",
    "data": {"dataset": "digits"},
    "federation": {"num-clients": 3, "rounds": 2},
}


def sweep(table, **base):
    return expand_sweep({**BASE, **base, "sweep": table}, source="s.toml")


def test_cartesian_product_in_file_order_with_labels_and_ids():
    # Arrange / Act
    s = sweep(
        {
            "privacy.target-epsilon": [1, 8.0],
            "seed": [0, 1, 2],
            "split": [
                {"label": "iid", "data": {"partitioner": "iid"}},
                {"label": "dir-0.5", "data": {"partitioner": "dirichlet", "alpha": 0.5}},
            ],
        }
    )
    # Assert
    assert len(s.runs) == 2 * 3 * 2
    first, last = s.runs[0], s.runs[-1]
    assert first.run_id == "target-epsilon-1_seed-0_split-iid"
    assert first.labels == {"privacy.target-epsilon": "1", "seed": "0", "split": "iid"}
    assert first.scenario.name == "sw.target-epsilon-1_seed-0_split-iid"
    assert last.scenario.privacy.target_epsilon == 8.0 and last.scenario.seed == 2
    assert last.scenario.data.partitioner == "dirichlet" and last.scenario.data.alpha == 0.5
    assert len({r.run_id for r in s.runs}) == len(s.runs)
    assert [a.touches_privacy for a in s.axes] == [True, False, False]


def test_infinite_epsilon_is_the_non_private_reference():
    # Arrange / Act
    s = sweep({"privacy.target-epsilon": [3, math.inf]}, privacy={"max-grad-norm": 2.0, "target-delta": 1e-6})
    # Assert
    private, reference = (r.scenario.privacy for r in s.runs)
    assert (private.mode, private.target_epsilon, private.max_grad_norm) == ("sample", 3.0, 2.0)
    assert (reference.mode, reference.target_epsilon, reference.target_delta) == ("none", None, 1e-6)


def test_quick_replaces_axes_and_base_keys():
    # Arrange
    table = {
        "seed": [0, 1, 2],
        "model": [{"label": "cnn", "model": {"name": "cnn"}}, {"label": "lstm", "model": {"name": "lstm"}}],
        "quick": {"seed": [0], "model": ["cnn"], "federation.rounds": 1},
    }
    # Act
    full, quick = sweep(table), expand_sweep({**BASE, "sweep": table}, source="s.toml", quick=True)
    # Assert
    assert len(full.runs) == 6 and full.runs[0].scenario.federation.rounds == 2
    assert [r.run_id for r in quick.runs] == ["seed-0_model-cnn"] and quick.quick
    assert quick.runs[0].scenario.federation.rounds == 1


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"seed": 3}, "sweep.seed: must be a non-empty list of values, got 3"),
        ({"seed": []}, "sweep.seed: must be a non-empty list"),
        ({"split": ["iid", "dirichlet"]}, "sweep.split: not a scenario key, so its values must be tables"),
        ({"split": [{"data": {"partitioner": "iid"}}]}, "sweep.split[0]: needs a 'label'"),
        ({"split": [{"label": "a"}, {"label": "a"}]}, "sweep.split: labels must differ"),
        ({"data": [1, 2]}, "sweep.data: sweep one key of [data]"),
        ({"data.alpha": [{"x": 1}]}, "sweep.data.alpha: a scenario key's values must be plain values"),
        ({"seed": [0], "reference": {"seed": "7"}}, "sweep.reference.seed: no axis 'seed' with label '7'"),
        ({"reference": {"seed": "0"}}, "sweep: has no axes"),
        ({"federation.rounds": [2, -1]}, "sweep run rounds--1): federation.rounds: Input should be greater"),
        ({"federation.roundz": [2]}, "federation.roundz: unknown key; allowed keys here:"),
        ({"status": [{"label": "a"}]}, "sweep.status: 'status' names a column of the sweep report"),
        (
            {
                "privacy.target-epsilon": [1, 3],
                "privacy.secure-aggregation": [True, False],
                "reference": {"privacy.target-epsilon": "3"},
            },
            "sweep.reference: also give a label for the protection axes ['privacy.secure-aggregation']",
        ),
        ({"privacy.target-epsilon": [0]}, "privacy.target-epsilon: Input should be greater than 0"),
    ],
)
def test_bad_sweeps_name_the_axis(table, message):
    # Arrange / Act
    with pytest.raises(ScenarioError) as err:
        sweep(table)
    # Assert
    assert str(err.value).startswith("s.toml")
    assert message in str(err.value)


def test_quick_with_an_unknown_label_names_it():
    # Arrange
    table = {"split": [{"label": "iid", "data": {"partitioner": "iid"}}], "quick": {"split": ["x"]}}
    # Act
    with pytest.raises(ScenarioError) as err:
        expand_sweep({**BASE, "sweep": table}, source="s.toml", quick=True)
    # Assert
    assert "sweep.quick.split: no such label ['x']; labels: ['iid']" in str(err.value)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"seed": [0, 1]}, "sweep: has no 'quick' table for --quick"),
        (
            {"split": [{"label": "a", "seed": 1}], "quick": {"split": [{"label": "a"}]}},
            "give the labels to keep",
        ),
    ],
)
def test_bad_quick_tables_name_the_problem(table, message):
    # Act
    with pytest.raises(ScenarioError) as err:
        expand_sweep({**BASE, "sweep": table}, source="s.toml", quick=True)
    # Assert
    assert message in str(err.value)


def test_infinite_epsilon_of_one_level_keeps_the_other():
    # Arrange
    privacy = {"mode": "both", "target-epsilon": 3.0, "user-target-epsilon": 8.0}
    # Act
    s = sweep(
        {"privacy.user-target-epsilon": [8, math.inf], "privacy.target-epsilon": [3, math.inf]},
        privacy=privacy,
    )
    # Assert
    modes = {r.run_id: r.scenario.privacy.mode for r in s.runs}
    assert modes == {
        "user-target-epsilon-8_target-epsilon-3": "both",
        "user-target-epsilon-8_target-epsilon-inf": "user",
        "user-target-epsilon-inf_target-epsilon-3": "sample",
        "user-target-epsilon-inf_target-epsilon-inf": "none",
    }


def test_data_files_set_by_an_axis_are_relative_to_the_scenario_file(tmp_path):
    # Arrange
    raw = {
        "name": "h",
        "data": {"dataset": "mnist"},
        "sweep": {"files": [{"label": "a", "data": {"data-files": {"train": "a.parquet"}}}]},
    }
    # Act
    s = expand_sweep(raw, source="s.toml", base_dir=tmp_path)
    # Assert
    assert s.runs[0].scenario.data.data_files == {"train": str(tmp_path / "a.parquet")}


def test_quick_on_a_plain_scenario_is_an_error(tmp_path):
    # Arrange
    path = tmp_path / "p.toml"
    path.write_text('name = "p"\n')
    # Act
    with pytest.raises(ScenarioError) as err:
        scenario_or_sweep(path, [], quick=True)
    # Assert
    assert "--quick applies to sweep files" in str(err.value)


def test_the_study_expands_to_every_protection_split_model_and_seed():
    # Arrange / Act
    full, _ = scenario_or_sweep(ROOT / "scenarios" / "study-privacy-section.toml", [], quick=False)
    quick, _ = scenario_or_sweep(ROOT / "scenarios" / "study-privacy-section.toml", [], quick=True)
    # Assert
    assert len(full.runs) == 2 * 2 * 7 and len(quick.runs) == 2 * 7  # seeds x splits x protections
    modes = {r.labels["protection"]: r.scenario.privacy for r in full.runs}
    assert modes["central"].mode == "none" and modes["fl"].mode == "none"
    assert [modes[f"eps-{e}"].target_epsilon for e in (1, 3, 8)] == [1.0, 3.0, 8.0]
    assert modes["user-eps-8"].mode == "user" and modes["eps-3-secagg"].secure_aggregation
    central = next(r.scenario for r in full.runs if r.labels["protection"] == "central")
    assert central.federation.num_clients == 1
    assert full.reference == {"protection": "fl"}
    canaries = {r.labels["protection"]: r.scenario.audit.canaries for r in full.runs}
    assert canaries == {p: 0 if p in ("user-eps-8", "eps-3-secagg") else 1000 for p in canaries}
    # each protection tunes on its own: 4 trials under DP-SGD, 2 (learning rate) otherwise
    trials = {a.arm_id: len(a.trials) for a in full.tune.arms}
    assert len(trials) == 7 and full.tune.trials == 4 * 4 + 3 * 2 == quick.tune.trials
    assert trials["model-cnn_protection-eps-3"] == 4 and trials["model-cnn_protection-user-eps-8"] == 2
    assert all(len(a.run_ids) == 2 * 2 for a in full.tune.arms)  # both splits, both seeds
    assert {r.scenario.model.name for r in full.runs} == {"cnn"}  # the LSTM is a commented-out line


def test_the_user_level_scale_sweep_keeps_the_data_and_scales_the_clients():
    # Arrange / Act
    full, _ = scenario_or_sweep(ROOT / "scenarios" / "study-user-level-scale.toml", [], quick=False)
    # Assert: 12,000 images over 20, 200 and 1,000 clients, half of them per round, at user-level ε 8
    sizes = {r.scenario.federation.num_clients for r in full.runs}
    assert sizes == {20, 200, 1000} and {r.scenario.data.max_train_examples for r in full.runs} == {12000}
    private = [r.scenario.privacy for r in full.runs if r.labels["protection"] == "user-eps-8"]
    assert [p.user_target_epsilon for p in private] == [8.0] * 3 and private[0].target_delta < 1 / 1000


def test_the_canary_audit_sweep_expands_to_four_protections_over_five_seeds():
    # Arrange / Act
    full, _ = scenario_or_sweep(ROOT / "scenarios" / "canary-audit.toml", [], quick=False)
    quick, _ = scenario_or_sweep(ROOT / "scenarios" / "canary-audit.toml", [], quick=True)
    # Assert
    assert len(full.runs) == 4 * 5 and len(quick.runs) == 4
    assert {r.scenario.audit.canaries for r in full.runs} == {1000}
    epsilons = {r.labels["protection"]: r.scenario.privacy.target_epsilon for r in quick.runs}
    assert epsilons == {"none": None, "eps-8": 8.0, "eps-3": 3.0, "eps-1": 1.0}


def test_labels_that_would_share_a_folder_are_an_error():
    # Arrange
    table = {"split": [{"label": "a/b", "seed": 1}, {"label": "a b", "seed": 2}]}
    # Act
    with pytest.raises(ScenarioError) as err:
        sweep(table)
    # Assert
    assert "runs ['a/b'] and ['a b'] would share the folder 'split-a-b'" in str(err.value)
