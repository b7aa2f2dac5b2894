"""The ``tune`` table of a sweep: arms, trials on a validation split, and one-line errors."""

import math

import pytest

from fedsim.commands.tune import best_trial
from fedsim.scenario import ScenarioError
from fedsim.scenario.sweeps import expand_sweep

BASE = {
    "name": "tn",
    "data": {"dataset": "digits"},
    "federation": {"num-clients": 3, "rounds": 2, "learning-rate": 0.1},
}
PROTECTIONS = [
    {"label": "fl", "privacy": {"mode": "none"}},
    {"label": "eps-8", "privacy": {"mode": "sample", "target-epsilon": 8.0}},
]
GRID = {"federation.learning-rate": [0.5, 2.0], "privacy.max-grad-norm": [0.1, 1.0]}


def sweep(tune, *, quick=False, **table):
    axes = table or {"seed": [0, 1], "protection": PROTECTIONS}
    return expand_sweep({**BASE, "sweep": {**axes, "tune": tune}}, source="s.toml", quick=quick)


def test_each_protection_arm_gets_its_own_trials_and_seeds_share_them():
    # Act
    plan = sweep(GRID).tune
    # Assert: arms by every axis but seed; each arm's runs are its seeds
    assert plan.by == ("protection",) and plan.validation_fraction == 0.1
    assert [a.arm_id for a in plan.arms] == ["protection-fl", "protection-eps-8"]
    fl, dp = plan.arms
    assert fl.run_ids == ("seed-0_protection-fl", "seed-1_protection-fl")
    # max-grad-norm does not apply without DP-SGD: two distinct trials, not four
    assert [t.config for t in fl.trials] == [
        {"federation.learning-rate": 0.5},
        {"federation.learning-rate": 2.0},
    ]
    assert len(dp.trials) == 4 and plan.trials == 6
    assert dp.trials[1].config == {"federation.learning-rate": 0.5, "privacy.max-grad-norm": 1.0}
    assert dp.trials[1].trial_id == "learning-rate-0.5_max-grad-norm-1"


def test_a_trial_trains_on_a_validation_split_without_the_audit():
    # Act
    trial = sweep(GRID).tune.arms[1].trials[3]
    # Assert: the arm's first run (seed 0) with the grid point, validation split, no audit or tracking
    s = trial.scenario
    assert (s.federation.learning_rate, s.privacy.max_grad_norm, s.privacy.target_epsilon) == (2.0, 1.0, 8.0)
    assert s.seed == 0 and s.data.validation_fraction == 0.1
    assert not s.audit.enabled and s.audit.canaries == 0
    assert s.tracking.spec().backends == ()
    assert s.name == "tn.tune.protection-eps-8.learning-rate-2_max-grad-norm-1"


def test_by_and_validation_fraction_are_read():
    # Act
    plan = sweep({**GRID, "by": [], "validation-fraction": 0.2}, seed=[0, 1]).tune
    # Assert: one arm for the whole sweep (no protection axis here), tuned on its first run
    assert [a.arm_id for a in plan.arms] == ["all"] and plan.arms[0].run_ids == ("seed-0", "seed-1")
    assert plan.arms[0].trials[0].scenario.data.validation_fraction == 0.2


def test_quick_may_replace_the_grid():
    # Act
    plan = expand_sweep(
        {
            **BASE,
            "sweep": {
                "protection": PROTECTIONS,
                "tune": GRID,
                "quick": {"tune": {"federation.learning-rate": [1.0]}, "federation.rounds": 1},
            },
        },
        source="s.toml",
        quick=True,
    ).tune
    # Assert
    assert plan.grid == {"federation.learning-rate": (1.0,)} and plan.trials == 2


@pytest.mark.parametrize(
    ("tune", "message"),
    [
        ([0.5, 1.0], "sweep.tune: must be a table of scenario keys to lists of values"),
        ({}, "sweep.tune: names no key to tune"),
        (
            {"learning-rate": [1.0]},
            "sweep.tune.learning-rate: not a tunable scenario key (a dotted key of model",
        ),
        ({"federation.learning-rate": 1.0}, "sweep.tune.federation.learning-rate: must be a non-empty list"),
        ({"federation.learning-rate": []}, "sweep.tune.federation.learning-rate: must be a non-empty list"),
        ({"federation.learning-rate": [1, 1]}, "sweep.tune.federation.learning-rate: values must differ"),
        ({"seed": [0, 1]}, "sweep.tune.seed: cannot be tuned: seeds are repetitions; make seed a sweep axis"),
        ({"privacy.target-epsilon": [1, 3]}, "target-epsilon: cannot be tuned: it is what the arms compare"),
        ({"audit.canaries": [0, 10]}, "sweep.tune.audit.canaries: cannot be tuned"),
        (
            {**GRID, "by": ["split"]},
            "sweep.tune.by: must be a list of this sweep's axes ['seed', 'protection']",
        ),
        (
            {**GRID, "validation-fraction": 0.9},
            "sweep.tune.validation-fraction: must be a number in (0, 0.5]",
        ),
        (
            {"federation.learning-rate": list(range(1, 102))},
            "sweep.tune: 101 grid points per arm; at most 100",
        ),
        ({"federation.learning-rate": [1.0, -2.0]}, "learning-rate = -2.0"),
        ({"federation.lerning-rate": [1.0]}, "federation.lerning-rate: unknown key"),
        ({"data.max-train-examples": [100, 200]}, "sweep.tune.data.max-train-examples: cannot be tuned"),
        ({"by": ["seed"], **GRID}, "sweep.tune.by: must include the protection axes ['protection']"),
        ({"validation_fraction": 0.2, **GRID}, "the table's own keys are validation-fraction, by"),
    ],
)
def test_a_malformed_tune_table_is_one_line_naming_the_key(tune, message):
    # Act
    with pytest.raises(ScenarioError) as caught:
        sweep(tune)
    # Assert
    text = str(caught.value)
    assert text.startswith("s.toml") and message in text and "\n" not in text


def test_a_malformed_quick_tune_table_is_an_error_without_quick_too():
    # Act
    with pytest.raises(ScenarioError) as caught:
        expand_sweep({**BASE, "sweep": {"protection": PROTECTIONS, "quick": {"tune": 3}}}, source="s.toml")
    # Assert
    assert str(caught.value).startswith("s.toml: sweep.quick.tune: must be a table of scenario keys")


def test_a_key_an_axis_sweeps_cannot_be_tuned_too():
    # Act
    with pytest.raises(ScenarioError) as caught:
        sweep(GRID, **{"federation.learning-rate": [0.05, 0.5], "protection": PROTECTIONS})
    # Assert
    assert "sweep.tune.federation.learning-rate: the sweep axis 'federation.learning-rate' sets it" in str(
        caught.value
    )


def test_keys_an_arm_does_not_use_are_not_tuned_there_even_without_a_default():
    # Arrange: clipped-count-stddev (default None) belongs to adaptive user-level clipping only
    tune = {"privacy.clipped-count-stddev": [1.0, 5.0], "federation.learning-rate": [0.5, 2.0]}
    protections = [*PROTECTIONS, {"label": "user", "privacy": {"mode": "user", "user-noise-multiplier": 1.0}}]
    # Act
    plan = sweep(tune, protection=protections).tune
    # Assert: every arm tunes the learning rate only (fixed clipping here), two trials each
    assert [[t.config for t in a.trials] for a in plan.arms] == [
        [{"federation.learning-rate": 0.5}, {"federation.learning-rate": 2.0}]
    ] * 3


def test_the_best_trial_is_the_highest_validation_accuracy_first_on_ties():
    # Act / Assert
    assert best_trial({"a": 0.5, "b": 0.9, "c": 0.9, "d": 0.1}) == "b"
    assert best_trial({"a": None, "b": math.nan, "c": 0.2}) == "c"
    assert best_trial({"a": None}) is None and best_trial({}) is None
