import pytest

from tests.fixtures.cli import fedsim


def test_bad_scenario_exits_2_with_one_line_per_problem(tmp_path):
    # Arrange
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[privacy]\ntarget-epsilon = -3\n[federation]\nlocal_epochs = 2\n')
    # Act
    proc = fedsim("run", str(bad), "--out", str(tmp_path / "out"))
    # Assert
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"{bad}: privacy.target-epsilon: Input should be greater than 0 (got -3)" in proc.stderr
    assert f"{bad}: federation.local_epochs: unknown key" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_missing_file_and_bad_set(tmp_path):
    proc = fedsim("run", str(tmp_path / "none.toml"))
    assert proc.returncode == 2 and "no such scenario file" in proc.stderr
    proc = fedsim("run", "scenarios/digits-smoke.toml", "--set", "federation.rounds=many")
    assert proc.returncode == 2 and "federation.rounds: Input should be a valid integer" in proc.stderr


def test_refuses_to_overwrite_foreign_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    proc = fedsim("run", "scenarios/digits-smoke.toml", "--out", str(tmp_path))
    assert proc.returncode == 2 and "not a complete fedsim run" in proc.stderr
    assert (tmp_path / "keep.txt").read_text() == "x"


def test_report_of_non_run(tmp_path):
    proc = fedsim("report", str(tmp_path))
    assert proc.returncode == 2 and "not a complete fedsim run" in proc.stderr


# Problems found after the file is valid: refused before training, exit 2, one line, nothing written.
REFUSED_BEFORE_TRAINING = {
    "gpu without gpu": (
        "resources.client-gpus=0.5",
        "resources.client-gpus = 0.5 but no CUDA GPU is visible",
    ),
    "impossible split": ("federation.num-clients=5000", "cannot split 1347 examples among 5000 clients"),
    "unreachable ray": (
        'resources.ray-address="ray://127.0.0.1:9"',
        "resources.ray-address = 'ray://127.0.0.1:9': cannot reach a Ray cluster there",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED_BEFORE_TRAINING))
def test_refused_before_training(tmp_path, case):
    # Arrange
    override, expected = REFUSED_BEFORE_TRAINING[case]
    # Act
    proc = fedsim("run", "scenarios/digits-smoke.toml", "--out", str(tmp_path / "o"), "--set", override)
    # Assert
    assert proc.returncode == 2
    assert f"error: scenarios/digits-smoke.toml: {expected}" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "o").exists()


def test_resume_takes_an_interrupted_run_folder_and_nothing_else(tmp_path, capsys):
    """``fedsim run --resume DIR``: each misuse is one line, exit 2, and leaves the folder as it was."""
    from fedsim.cli import main

    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    complete = tmp_path / "complete"
    complete.mkdir()
    (complete / "summary.json").write_text('{"status": "complete"}')
    cases = [
        (["run"], "give a scenario file, or --resume DIR"),
        (["run", "--resume", str(tmp_path / "none")], "no such run directory"),
        (["run", "--resume", str(a_file)], "no such run directory"),
        (["run", "--resume", str(tmp_path)], "no checkpoint.pt"),
        (["run", "--resume", str(complete)], "the run is already complete; nothing to resume"),
        (["run", "scenarios/digits-smoke.toml", "--resume", str(complete)], "drop the scenario file"),
        (["run", "--resume", str(complete), "--set", "federation.rounds=2"], "only --ray-address may change"),
        (["run", "--resume", str(complete), "--out", str(tmp_path / "o")], "drop the scenario file, --set"),
    ]
    for argv, message in cases:
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2, argv
        assert err.count("\n") == 1 and err.startswith("error: ") and message in err, (argv, err)
    assert (complete / "summary.json").read_text() == '{"status": "complete"}' and a_file.read_text() == "x"
