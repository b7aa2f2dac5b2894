"""Scenario validation: a good file, and bad files whose messages name the key."""

from pathlib import Path

import pytest

from fedsim.scenario import ScenarioError, build_run_spec, load_scenario, validate_scenario

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(text, encoding="utf-8")
    return path


SWEEPS = {
    "study-privacy-section.toml",
    "study-user-level-scale.toml",
    "canary-audit.toml",
    "strategies.toml",
}


@pytest.mark.parametrize(
    "name", sorted(p.name for p in (ROOT / "scenarios").glob("*.toml") if p.name not in SWEEPS)
)
def test_shipped_scenarios_are_valid(name):
    # Arrange / Act
    scenario = load_scenario(ROOT / "scenarios" / name)
    # Assert
    assert scenario.name == name.removesuffix(".toml")
    expected_mode = name.removeprefix("privacy-").split("-")[0].removesuffix(".toml")
    mode = {"secagg": "sample", "tiers": "sample"}.get(expected_mode, expected_mode)
    assert scenario.privacy.mode == (mode if name.startswith("privacy-") else "sample")
    assert build_run_spec(scenario).data.dataset == scenario.data.dataset


def test_text_defaults_and_data_files_resolve(tmp_path):
    # Arrange
    kjv = write(tmp_path, 'name = "t"\n[data]\ndataset = "kjv"\n[model]\nname = "lstm"\n')
    (tmp_path / "sub").mkdir()
    hub = tmp_path / "sub" / "s.toml"
    hub.write_text(
        'name = "h"\n[data]\ndataset = "femnist"\npartitioner = "natural-id"\n'
        'data-files = { train = "femnist.parquet" }\n[federation]\nnum-clients = 6\n'
    )
    # Act
    text_spec = build_run_spec(load_scenario(kjv)).data
    hub_spec = build_run_spec(load_scenario(hub)).data
    # Assert: LEAF's 80-character windows, 10 % held out, every window (stride 1), no caps
    assert (text_spec.window_length, text_spec.window_stride, text_spec.test_fraction) == (80, 1, 0.1)
    assert text_spec.max_train_windows_per_user is None
    # relative data files are taken from the scenario file's folder
    assert hub_spec.files() == {"train": str((tmp_path / "sub" / "femnist.parquet").resolve())}
    assert hub_spec.test_fraction == 0.1
    # an online data set given only a train file holds out a share; with a test file it does not
    mnist = write(tmp_path, 'name = "m"\n[data]\ndataset = "mnist"\ndata-files = { train = "a.parquet" }\n')
    assert build_run_spec(load_scenario(mnist)).data.test_fraction == 0.1
    both = build_run_spec(
        load_scenario(mnist, ["data.dataset=femnist", "data.data-files.test=b.parquet"])
    ).data
    assert both.test_fraction is None


def test_good_file_resolves_defaults_and_specs(tmp_path):
    # Arrange
    path = write(
        tmp_path,
        'name = "ok"\n[data]\ndataset = "digits"\npartitioner = "dirichlet"\nalpha = 0.5\n'
        "[federation]\nnum-clients = 4\nrounds = 3\nlearning-rate = 1\n"
        "[privacy]\ntarget-epsilon = 2\n",
    )
    # Act
    scenario = load_scenario(path)
    specs = build_run_spec(scenario)
    # Assert
    assert specs.partition.alpha == 0.5 and specs.partition.num_partitions == 4
    assert specs.train.learning_rate == 1.0 and specs.federation.rounds == 3
    assert specs.privacy.target_epsilon == 2.0 and specs.privacy.target_delta == 1e-5
    assert scenario.to_toml_dict()["federation"]["batch-size"] == 64


def test_set_overrides_one_key(tmp_path):
    path = write(tmp_path, 'name = "ok"\n[federation]\nrounds = 5\n')
    scenario = load_scenario(path, ["federation.rounds=2", "data.dataset=digits"])
    assert scenario.federation.rounds == 2
    assert scenario.data.dataset == "digits"


BAD = {
    "unknown top key": ('name = "x"\nepochs = 3\n', "epochs: unknown key; allowed keys here:"),
    "unknown nested key": (
        'name = "x"\n[federation]\nnum_clients = 3\n',
        "federation.num_clients: unknown key; allowed keys here: batch-size",
    ),
    "wrong type": (
        'name = "x"\n[federation]\nrounds = "five"\n',
        "federation.rounds: Input should be a valid integer",
    ),
    "negative epsilon": (
        'name = "x"\n[privacy]\ntarget-epsilon = -1.0\n',
        "privacy.target-epsilon: Input should be greater than 0 (got -1.0)",
    ),
    "delta out of range": (
        'name = "x"\n[privacy]\ntarget-epsilon = 1.0\ntarget-delta = 1.5\n',
        "privacy.target-delta: Input should be less than 1 (got 1.5)",
    ),
    "unknown dataset": (
        'name = "x"\n[data]\ndataset = "imagenet"\n',
        "data.dataset: Input should be 'fashion-mnist', 'digits', 'kjv', 'mnist', 'femnist', 'cifar10' "
        "or 'shakespeare' (got 'imagenet')",
    ),
    "dirichlet without alpha": (
        'name = "x"\n[data]\npartitioner = "dirichlet"\n',
        "partitioner 'dirichlet' needs 'alpha'",
    ),
    "alpha for iid": ('name = "x"\n[data]\nalpha = 0.3\n', "'alpha' is only used by partitioner 'dirichlet'"),
    "epsilon and tiers": (
        'name = "x"\n[privacy]\ntarget-epsilon = 1.0\n[[privacy.tiers]]\nshare = 1.0\ntarget-epsilon = 2.0\n',
        "give either 'target-epsilon' (one budget) or 'tiers' (budgets per tier), not both",
    ),
    "tier shares": (
        'name = "x"\n[[privacy.tiers]]\nshare = 0.3\ntarget-epsilon = 1.0\n'
        "[[privacy.tiers]]\nshare = 0.6\ntarget-epsilon = 8.0\n",
        "tiers: the shares must add up to 1, got 0.3 + 0.6 = 0.9",
    ),
    "tier without epsilon": (
        'name = "x"\n[[privacy.tiers]]\nshare = 1.0\n',
        "privacy.tiers.0.target-epsilon: required key is missing",
    ),
    "sample key in user mode": (
        'name = "x"\n[privacy]\nmode = "user"\nuser-noise-multiplier = 1.0\ntarget-epsilon = 3.0\n',
        "'target-epsilon' is only used with mode 'sample' or 'both', not 'user'",
    ),
    "user mode without noise": (
        'name = "x"\n[privacy]\nmode = "user"\n',
        "mode 'user' needs 'user-noise-multiplier' or 'user-target-epsilon'",
    ),
    "adaptive key with fixed clipping": (
        'name = "x"\n[privacy]\nmode = "user"\nuser-noise-multiplier = 1.0\nclip-norm-lr = 0.1\n',
        "'clip-norm-lr' is only used with clipping = \"adaptive\"",
    ),
    "user key in sample mode": (
        'name = "x"\n[privacy]\nclipping-norm = 0.5\n',
        "'clipping-norm' is only used with mode 'user' or 'both', not 'sample'",
    ),
    "secagg with server clipping": (
        'name = "x"\n[privacy]\nmode = "user"\nuser-noise-multiplier = 1.0\nsecure-aggregation = true\n',
        'which then cannot clip it: set clip-on = "client"',
    ),
    "secure mode": (
        'name = "x"\n[privacy]\nsecure-mode = true\n',
        "privacy.secure-mode = true needs the torchcsprng package",
    ),
    "user level with fedavgm": (
        'name = "x"\n[federation]\nstrategy = "fedavgm"\n'
        '[privacy]\nmode = "user"\nuser-noise-multiplier = 1.0\n',
        "privacy.mode 'user' needs federation.strategy = \"fedavg\"",
    ),
    "calibrate fixed noise": (
        'name = "x"\n[privacy]\nnoise-multiplier = 1.0\ncalibrate-for = "expected-rounds"\n',
        "'calibrate-for' calibrates the noise; it does not apply with a fixed 'noise-multiplier'",
    ),
    "zero clients": (
        'name = "x"\n[federation]\nnum-clients = 0\n',
        "federation.num-clients: Input should be greater than or equal to 1",
    ),
    "fraction above one": (
        'name = "x"\n[federation]\nfraction-train = 1.5\n',
        "federation.fraction-train: Input should be less than or equal to 1",
    ),
    "missing name": ("seed = 1\n", "name: required key is missing"),
    "bad name": ('name = "../etc"\n', "name: String should match pattern"),
    "section not a table": ('name = "x"\nprivacy = 3\n', "privacy: must be a table"),
    "bool for int": ('name = "x"\nseed = true\n', "seed: Input should be a valid integer"),
    "infinite epsilon": (
        'name = "x"\n[privacy]\ntarget-epsilon = inf\n',
        "privacy.target-epsilon: Input should be a finite number",
    ),
    "cnn on text": (
        'name = "x"\n[data]\ndataset = "kjv"\n',
        "model.name: 'cnn' cannot read text data ('kjv'); use one of ['lstm']",
    ),
    "pathological without classes": (
        'name = "x"\n[data]\npartitioner = "pathological"\n',
        "data: partitioner 'pathological' needs 'classes-per-client'",
    ),
    "shard size for dirichlet": (
        'name = "x"\n[data]\npartitioner = "dirichlet"\nalpha = 1.0\nshard-size = 5\n',
        "data: 'shard-size' is only used by partitioner 'shard', not 'dirichlet'",
    ),
    "natural-id without users": (
        'name = "x"\n[data]\ndataset = "digits"\npartitioner = "natural-id"\n',
        "partitioner 'natural-id' needs natural users; 'digits' has none",
    ),
    "text key for images": (
        'name = "x"\n[data]\nwindow-length = 40\n',
        "data: 'window-length' does not apply to data set 'fashion-mnist'",
    ),
    "test fraction with a test split": (
        'name = "x"\n[data]\ntest-fraction = 0.2\n',
        "'test-fraction' does not apply: 'fashion-mnist' has a test split",
    ),
    "data files offline": (
        'name = "x"\n[data]\ndataset = "digits"\ndata-files = { train = "a.parquet" }\n',
        "'data-files' is only for online data sets, not 'digits'",
    ),
    "data files without train": (
        'name = "x"\n[data]\ndataset = "mnist"\ndata-files = { validation = "a.parquet" }\n',
        'data-files takes a "train" file and optionally a "test" file',
    ),
    "empty data file path": (
        'name = "x"\n[data]\ndataset = "mnist"\ndata-files = { train = "" }\n',
        "data.data-files.train: String should have at least 1 character",
    ),
    "several data problems at once": (
        'name = "x"\n[data]\nwindow-length = 9\nmax-test-windows = 5\nalpha = 0.5\n',
        "data: 'alpha' is only used by partitioner 'dirichlet', not 'iid'; 'window-length' does not apply "
        "to data set 'fashion-mnist'; 'max-test-windows' does not apply to data set 'fashion-mnist'",
    ),
    "zero classes per client": (
        'name = "x"\n[data]\npartitioner = "pathological"\nclasses-per-client = 0\n',
        "data.classes-per-client: Input should be greater than or equal to 1 (got 0)",
    ),
    "unknown mode": (
        'name = "x"\n[privacy]\nmode = "users"\n',
        "privacy.mode: Input should be 'none', 'sample', 'user' or 'both'",
    ),
    "activation of the lstm": (
        'name = "x"\n[model]\nname = "lstm"\nactivation = "tanh"\n',
        "model.activation: 'tanh' applies to model.name = 'cnn' only (the lstm's activations are fixed)",
    ),
    "unknown activation": (
        'name = "x"\n[model]\nactivation = "gelu"\n',
        "model.activation: Input should be 'relu' or 'tanh'",
    ),
    "unknown dp lstm": (
        'name = "x"\n[privacy]\ndp-lstm = "cudnn"\n',
        "privacy.dp-lstm: Input should be 'fast' or 'opacus'",
    ),
    "one canary": (
        'name = "x"\n[audit]\ncanaries = 1\n',
        "audit: 'canaries' must be 0 (none) or at least 2",
    ),
    "canaries without the audit": (
        'name = "x"\n[audit]\nenabled = false\ncanaries = 100\n',
        "'canaries' needs enabled = true",
    ),
    "canaries under SecAgg+": (
        'name = "x"\n[privacy]\nsecure-aggregation = true\n[audit]\ncanaries = 100\n',
        "audit.canaries does not apply to privacy.secure-aggregation runs",
    ),
    "example canaries under user-level DP": (
        'name = "x"\n[privacy]\nmode = "user"\nuser-target-epsilon = 8.0\n[audit]\ncanaries = 100\n',
        'with privacy.mode = "user" set canaries = 0 and input-canaries = 0',
    ),
    "a canary above the clipping norm": (
        'name = "x"\n[privacy]\nmax-grad-norm = 0.5\n[audit]\ncanaries = 10\ncanary-norm = 1.0\n',
        "audit.canary-norm = 1 is above privacy.max-grad-norm = 0.5",
    ),
    "no evaluation examples": (
        'name = "x"\n[evaluation]\nround-examples = 0\n',
        "evaluation.round-examples: Input should be greater than or equal to 1",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_file_error_names_file_and_key(tmp_path, case):
    # Arrange
    text, expected = BAD[case]
    path = write(tmp_path, text)
    # Act
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    # Assert
    message = str(err.value)
    assert message.startswith(f"{path}: "), message
    assert expected in message, message


@pytest.mark.parametrize(
    "payload, expected",
    [
        (b"", "empty scenario"),
        (b'name = "x"\n[data\n', "not valid TOML"),
        (b'name = "\xff\xfe"\n', "not UTF-8 text"),
    ],
)
def test_unreadable_files(tmp_path, payload, expected):
    path = tmp_path / "s.toml"
    path.write_bytes(payload)
    with pytest.raises(ScenarioError, match=expected):
        load_scenario(path)


def test_missing_file(tmp_path):
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "nope.toml")


def test_bad_override(tmp_path):
    path = write(tmp_path, 'name = "x"\n')
    with pytest.raises(ScenarioError, match="expected KEY=VALUE"):
        load_scenario(path, ["federation.rounds"])
    with pytest.raises(ScenarioError, match="federation.rounds: Input should be greater than or equal to 1"):
        load_scenario(path, ["federation.rounds=0"])


def test_set_cannot_replace_a_whole_table(tmp_path):
    path = write(tmp_path, 'name = "x"\n[federation]\nnum-clients = 2\n')
    with pytest.raises(ScenarioError, match="sets one key, not a whole table"):
        load_scenario(path, ["federation={rounds=1}"])


def test_set_errors_name_the_override(tmp_path):
    path = write(tmp_path, 'name = "x"\n')
    with pytest.raises(ScenarioError) as err:
        load_scenario(path, ["federation.num-clients=100001"])
    assert str(err.value).startswith(
        f"{path} (with --set federation.num-clients=100001): federation.num-clients:"
    )


def test_byte_order_mark_is_tolerated(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b'\xef\xbb\xbfname = "bom"\n')
    assert load_scenario(path).name == "bom"


def test_privacy_defaults_to_target_epsilon_3_unless_noise_is_fixed(tmp_path):
    only_norm = load_scenario(write(tmp_path, 'name = "x"\n[privacy]\nmax-grad-norm = 2.0\n'))
    assert only_norm.privacy.target_epsilon == 3.0 and only_norm.privacy.max_grad_norm == 2.0
    fixed = load_scenario(write(tmp_path, 'name = "x"\n[privacy]\nnoise-multiplier = 1.2\n'))
    assert fixed.privacy.target_epsilon is None and fixed.privacy.noise_multiplier == 1.2
    none = load_scenario(write(tmp_path, 'name = "x"\n[privacy]\nmode = "none"\n'))
    assert none.privacy.target_epsilon is None and not build_run_spec(none).privacy.is_sample_level


def test_schema_offers_every_registered_dataset_partitioner_and_model():
    from typing import get_args

    from fedsim.data import available_datasets
    from fedsim.models import available_models
    from fedsim.partition import available_partitioners
    from fedsim.scenario.sections import DatasetName, ModelSection, PartitionerName

    assert set(get_args(DatasetName)) == set(available_datasets())
    assert set(get_args(PartitionerName)) == set(available_partitioners())
    assert set(get_args(ModelSection.model_fields["name"].annotation)) == set(available_models())


@pytest.mark.parametrize(
    "privacy",
    [
        {"mode": "none"},
        {"mode": "sample", "noise-multiplier": 1.0},
        {"mode": "user", "user-noise-multiplier": 1.0},
        {"mode": "both", "user-target-epsilon": 3.0, "clipping": "adaptive", "clipped-count-stddev": 5.0},
        {"tiers": [{"share": 0.5, "target-epsilon": 1.0}, {"share": 0.5, "target-epsilon": 8.0}]},
    ],
)
def test_a_resolved_scenario_is_itself_valid(privacy):
    # A run writes scenario.to_toml_dict() as its scenario.toml; running that file again must work.
    scenario = validate_scenario({"name": "x", "privacy": privacy}, source="s.toml")
    again = validate_scenario(scenario.to_toml_dict(), source="scenario.toml")
    assert again.to_toml_dict() == scenario.to_toml_dict()
    assert build_run_spec(again).privacy == build_run_spec(scenario).privacy


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "[federation]\nnum-clients = 3\n[privacy]\nmin-clients = 10\n",
            "privacy.min-clients = 10 is more than",
        ),
        (
            "[privacy]\n[[privacy.tiers]]\nshare = 0.04\ntarget-epsilon = 1.0\n"
            "[[privacy.tiers]]\nshare = 0.96\ntarget-epsilon = 8.0\n",
            "privacy.tiers.0: share 0.04 of 10 clients is no client",
        ),
        (
            '[[privacy.tiers]]\nname = "a"\nshare = 0.5\ntarget-epsilon = 1.0\n'
            '[[privacy.tiers]]\nname = "a"\nshare = 0.5\ntarget-epsilon = 8.0\n',
            "tiers: names must differ",
        ),
        (
            "[[privacy.tiers]]\nshare = 1.0\ntarget-epsilon = 1.0\nbogus = 1\n",
            "privacy.tiers.0.bogus: unknown key; allowed keys here: name, share, target-epsilon",
        ),
    ],
)
def test_privacy_rules_across_sections(tmp_path, text, expected):
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, 'name = "x"\n' + text))
    assert expected in str(err.value)
