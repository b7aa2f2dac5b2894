"""Bad input (issue 6, item 9): malformed scenario files, data paths and ``--set`` overrides.

Every case is refused with exit code 2 and one ``error:`` line that names the
key (or file) and what is wrong: no traceback, nothing in the file executed, no
run marked complete. Problems found only when the data is loaded are refused by
``run_scenario`` before Ray starts (a guard below fails the case if it would).
"""

import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from fedsim.cli import main
from fedsim.results.store import complete_summary
from fedsim.scenario import validate_scenario
from tests.fixtures.cli import ROOT

# As scenarios/digits-smoke.toml: valid, so each edit below is the only problem in its file.
VALID = """\
name = "digits-smoke"
seed = 0

[data]
dataset = "digits"
partitioner = "iid"

[model]
name = "cnn"

[federation]
num-clients = 3
rounds = 3
fraction-train = 1.0
local-epochs = 5
batch-size = 128
learning-rate = 2.0
momentum = 0.0

[privacy]
mode = "sample"
target-epsilon = 8.0
target-delta = 1e-5
max-grad-norm = 1.0

[resources]
client-cpus = 1
client-gpus = 0.0
"""

# An online data set read from local files (relative to the scenario's folder): valid as a file.
HUB = """\
name = "hub"

[data]
dataset = "mnist"
data-files = { train = "train.parquet" }
"""

KJV = """\
name = "kjv"

[data]
dataset = "kjv"
partitioner = "natural-id"

[model]
name = "lstm"
"""

CODE = "__import__('os').system('touch PWNED')"
"""Python (and shell) that must stay a string: it would create ``PWNED`` in the working folder."""

S = "<scenario>"  # replaced by the scenario file's path in the expected messages
T = "<tmp>"  # replaced by the test's folder


def edit(old: str, new: str, base: str = VALID) -> str:
    assert base.count(old) == 1, old
    return base.replace(old, new)


@dataclass(frozen=True)
class Case:
    """A scenario file's contents (None: no file), the expected parts of the error line, and the setup."""

    text: str | bytes | None
    expected: tuple[str, ...]
    args: tuple[str, ...] = ()
    path: str = "scenario.toml"  # relative to the test's folder (or absolute)
    setup: Callable[[Path, pytest.MonkeyPatch], None] | None = None


def no_fashion_mnist(tmp_path, monkeypatch):
    from fedsim.data import load_dataset

    monkeypatch.setenv("FEDSIM_FASHION_MNIST_DIR", str(tmp_path / "no-such-dir"))
    load_dataset.cache_clear()  # an earlier test's loaded copy would hide the missing files


def no_bible_program(tmp_path, monkeypatch):
    from fedsim.data import load_dataset

    monkeypatch.setenv("PATH", str(tmp_path))
    load_dataset.cache_clear()


def hub_file(name: str, data: bytes | None) -> Callable[[Path, pytest.MonkeyPatch], None]:
    """Setup: ``name`` in the test's folder, as a file holding ``data``, or a folder when None."""

    def setup(tmp_path, monkeypatch):
        if data is None:
            (tmp_path / name).mkdir()
        else:
            (tmp_path / name).write_bytes(data)

    return setup


def out_is_file(tmp_path, monkeypatch):
    (tmp_path / "out").write_text("keep")


def out_is_foreign_folder(tmp_path, monkeypatch):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("keep")


def symlink_loop(tmp_path, monkeypatch):
    (tmp_path / "loop.toml").symlink_to(tmp_path / "loop.toml")


def scenario_folder(tmp_path, monkeypatch):
    (tmp_path / "folder").mkdir()


CASES = [
    # wrong types
    pytest.param(
        Case(
            edit("rounds = 3", 'rounds = "3"'),
            ("federation.rounds: Input should be a valid integer (got '3')",),
        ),
        id="rounds-string",
    ),
    pytest.param(
        Case(
            edit("rounds = 3", "rounds = true"),
            ("federation.rounds: Input should be a valid integer (got True)",),
        ),
        id="rounds-bool",
    ),
    pytest.param(
        Case(
            edit("seed = 0", "seed = [0, 1]"), (f"{S}: seed: Input should be a valid integer (got [0, 1])",)
        ),
        id="seed-list",
    ),
    pytest.param(
        Case(
            edit("learning-rate = 2.0", "learning-rate = { value = 2.0 }"),
            ("federation.learning-rate: Input should be a valid number",),
        ),
        id="learning-rate-table",
    ),
    pytest.param(
        Case('name = "x"\ndata = 5\n', (f"{S}: data: must be a table ([data]), got 5",)),
        id="section-is-a-number",
    ),
    pytest.param(
        Case(
            'name = "x"\n[[federation]]\nrounds = 2\n',
            ("federation: must be a table ([federation]), got [{",),
        ),
        id="section-is-an-array-of-tables",
    ),
    pytest.param(
        Case(
            edit("num-clients = 3", "num-clients = 1e12"),
            ("federation.num-clients: Input should be a valid integer (got 1000000000000.0)",),
        ),
        id="num-clients-float",
    ),
    # target-epsilon out of range
    pytest.param(
        Case(
            edit("target-epsilon = 8.0", "target-epsilon = 0"),
            ("privacy.target-epsilon: Input should be greater than 0 (got 0)",),
        ),
        id="epsilon-zero",
    ),
    pytest.param(
        Case(
            edit("target-epsilon = 8.0", "target-epsilon = -1.0"),
            ("privacy.target-epsilon: Input should be greater than 0 (got -1.0)",),
        ),
        id="epsilon-negative",
    ),
    pytest.param(
        Case(
            edit("target-epsilon = 8.0", "target-epsilon = nan"),
            ("privacy.target-epsilon: Input should be a finite number (got nan)",),
        ),
        id="epsilon-nan",
    ),
    pytest.param(
        Case(
            edit("target-epsilon = 8.0", "target-epsilon = inf"),
            ("privacy.target-epsilon: Input should be a finite number (got inf)",),
        ),
        id="epsilon-inf",
    ),
    pytest.param(
        Case(
            edit("target-epsilon = 8.0", "target-epsilon = 1e400"),
            ("privacy.target-epsilon: Input should be a finite number (got inf)",),
        ),
        id="epsilon-overflows-to-inf",
    ),
    # target-delta out of range
    pytest.param(
        Case(
            edit("target-delta = 1e-5", "target-delta = 0.0"),
            ("privacy.target-delta: Input should be greater than 0 (got 0.0)",),
        ),
        id="delta-zero",
    ),
    pytest.param(
        Case(
            edit("target-delta = 1e-5", "target-delta = 1.0"),
            ("privacy.target-delta: Input should be less than 1 (got 1.0)",),
        ),
        id="delta-one",
    ),
    pytest.param(
        Case(
            edit("target-delta = 1e-5", "target-delta = 2"),
            ("privacy.target-delta: Input should be less than 1 (got 2)",),
        ),
        id="delta-above-one",
    ),
    pytest.param(
        Case(
            edit("target-delta = 1e-5", "target-delta = -1e-5"),
            ("privacy.target-delta: Input should be greater than 0 (got -1e-05)",),
        ),
        id="delta-negative",
    ),
    pytest.param(
        Case(
            edit("target-delta = 1e-5", "target-delta = nan"),
            ("privacy.target-delta: Input should be less than 1 (got nan)",),
        ),
        id="delta-nan",
    ),
    # Dirichlet alpha
    pytest.param(
        Case(
            edit('partitioner = "iid"', 'partitioner = "dirichlet"\nalpha = 0.0'),
            ("data.alpha: Input should be greater than 0 (got 0.0)",),
        ),
        id="alpha-zero",
    ),
    pytest.param(
        Case(
            edit('partitioner = "iid"', 'partitioner = "dirichlet"\nalpha = -0.5'),
            ("data.alpha: Input should be greater than 0 (got -0.5)",),
        ),
        id="alpha-negative",
    ),
    pytest.param(
        Case(
            edit('partitioner = "iid"', 'partitioner = "dirichlet"'),
            (f"{S}: data: partitioner 'dirichlet' needs 'alpha'",),
        ),
        id="alpha-missing",
    ),
    # counts and fractions
    pytest.param(
        Case(
            edit("num-clients = 3", "num-clients = 0"),
            ("federation.num-clients: Input should be greater than or equal to 1 (got 0)",),
        ),
        id="num-clients-zero",
    ),
    pytest.param(
        Case(
            edit("num-clients = 3", "num-clients = 1_000_000_000_000"),
            ("federation.num-clients: Input should be less than or equal to 100000 (got 1000000000000)",),
        ),
        id="num-clients-huge",
    ),
    pytest.param(
        Case(
            edit("rounds = 3", "rounds = 1_000_000_000"),
            ("federation.rounds: Input should be less than or equal to 100000 (got 1000000000)",),
        ),
        id="rounds-huge",
    ),
    # the [faults] section and the round timeout
    pytest.param(
        Case(
            edit("rounds = 3", "rounds = 3\nround-timeout = 0"),
            ("federation.round-timeout: Input should be greater than 0 (got 0)",),
        ),
        id="round-timeout-zero",
    ),
    pytest.param(
        Case(
            VALID + "\n[faults]\nrate = 1.5\n",
            ("faults.rate: Input should be less than or equal to 1 (got 1.5)",),
        ),
        id="fault-rate-above-one",
    ),
    pytest.param(
        Case(
            VALID + '\n[faults]\nkind = "explode"\n',
            ("faults.kind: Input should be 'exception', 'hang' or 'crash'",),
        ),
        id="fault-kind-unknown",
    ),
    pytest.param(
        Case(
            edit("rounds = 3", "rounds = 3\nround-timeout = 5") + '\n[faults]\nkind = "hang"\nhang-s = 2\n',
            ("faults.hang-s = 2 must be longer than federation.round-timeout = 5",),
        ),
        id="hang-shorter-than-the-timeout",
    ),
    pytest.param(
        Case(VALID + "\n[faults]\nhang-s = 9\n", ('faults.hang-s only applies to kind = "hang"',)),
        id="hang-s-without-a-hang",
    ),
    pytest.param(
        Case(
            edit("[privacy]\n", "[privacy]\nsecure-aggregation = true\n") + "\n[faults]\nrate = 0.1\n",
            ("[faults] and federation.round-timeout do not apply to privacy.secure-aggregation runs",),
        ),
        id="faults-with-secagg",
    ),
    pytest.param(
        Case(
            edit("seed = 0", "seed = 99999999999999999999999"),
            ("seed: Input should be less than or equal to 4294967295 (got 99999999999999999999999)",),
        ),
        id="integer-beyond-64-bits",
    ),
    pytest.param(
        Case(
            edit("fraction-train = 1.0", "fraction-train = 0.0"),
            ("federation.fraction-train: Input should be greater than 0 (got 0.0)",),
        ),
        id="fraction-train-zero",
    ),
    pytest.param(
        Case(
            edit("fraction-train = 1.0", "fraction-train = 1.5"),
            ("federation.fraction-train: Input should be less than or equal to 1 (got 1.5)",),
        ),
        id="fraction-train-above-one",
    ),
    pytest.param(
        Case(
            edit("max-grad-norm = 1.0", "max-grad-norm = 1.0\nmin-clients = 5"),
            ("privacy.min-clients = 5 is more than federation.num-clients = 3",),
        ),
        id="min-clients-above-num-clients",
    ),
    # unknown keys, sections and names
    pytest.param(
        Case(
            edit("seed = 0", "seed = 0\nepochs = 3"),
            (f"{S}: epochs: unknown key; allowed keys here: ", "federation"),
        ),
        id="unknown-top-level-key",
    ),
    pytest.param(
        Case(
            edit("rounds = 3", "rounds = 3\nround = 4"),
            ("federation.round: unknown key; allowed keys here: ", "rounds"),
        ),
        id="unknown-key-in-section",
    ),
    pytest.param(
        Case(
            edit("local-epochs = 5", "local_epochs = 5"),
            ("federation.local_epochs: unknown key; allowed keys here: ", "local-epochs"),
        ),
        id="snake-case-key",
    ),
    pytest.param(
        Case(VALID + "\n[training]\nepochs = 2\n", ("training: unknown key; allowed keys here: ", "privacy")),
        id="unknown-section",
    ),
    pytest.param(
        Case(
            edit('dataset = "digits"', 'dataset = "imagenet"'),
            ("data.dataset: Input should be 'fashion-mnist', 'digits'", "(got 'imagenet')"),
        ),
        id="unknown-dataset",
    ),
    pytest.param(
        Case(
            edit('name = "cnn"', 'name = "resnet"'),
            ("model.name: Input should be 'cnn' or 'lstm' (got 'resnet')",),
        ),
        id="unknown-model",
    ),
    pytest.param(
        Case(
            edit('partitioner = "iid"', 'partitioner = "random"'),
            ("data.partitioner: Input should be 'iid', 'dirichlet'", "(got 'random')"),
        ),
        id="unknown-partitioner",
    ),
    pytest.param(
        Case(edit('name = "digits-smoke"\n', ""), (f"{S}: name: required key is missing",)), id="name-missing"
    ),
    # files that are not scenarios
    pytest.param(Case("", (f"{S}: empty scenario; at least 'name' is required",)), id="empty-file"),
    pytest.param(
        Case("# a comment\n\n# and another\n", (f"{S}: empty scenario; at least 'name' is required",)),
        id="only-comments",
    ),
    pytest.param(
        Case(
            'name = "café"\n'.encode("latin-1"),
            (f"{S}: not UTF-8 text (invalid continuation byte at byte 11)",),
        ),
        id="not-utf-8",
    ),
    pytest.param(Case('name = "x\n', (f"{S}: not valid TOML: ", "line 1")), id="unterminated-string"),
    pytest.param(
        Case('name = "x"\nname = "y"\n', (f"{S}: not valid TOML: Cannot overwrite a value", "line 2")),
        id="duplicate-key",
    ),
    pytest.param(Case(edit("rounds = 3", "rounds = 3\x00"), (f"{S}: not valid TOML: ",)), id="raw-nul-byte"),
    pytest.param(
        Case(
            'name = "x"\nv = ' + "[" * 100_000 + "]" * 100_000 + "\n",
            (f"{S}: arrays or inline tables nested too deeply to read",),
        ),
        id="nested-too-deeply",
    ),
    pytest.param(
        Case(None, ("/dev/zero: larger than 1000000 bytes; a scenario is a short file",), path="/dev/zero"),
        id="endless-file",
    ),
    pytest.param(Case(None, (f"{S}: no such scenario file",)), id="missing-scenario-file"),
    pytest.param(
        Case(
            None, (f"{T}/folder: is a directory, not a scenario file",), path="folder", setup=scenario_folder
        ),
        id="scenario-is-a-folder",
    ),
    pytest.param(
        Case(
            None,
            (f"{T}/loop.toml: cannot read (Too many levels of symbolic links)",),
            path="loop.toml",
            setup=symlink_loop,
        ),
        id="scenario-symlink-loop",
    ),
    # data, not code
    pytest.param(
        Case(
            edit('name = "digits-smoke"', f'name = "{CODE}"'),
            (f"{S}: name: String should match pattern", f'(got "{CODE}")'),
        ),
        id="python-in-name",
    ),
    pytest.param(
        Case(
            edit("client-gpus = 0.0", f'client-gpus = 0.0\nray-address = "{CODE}"'),
            (f"{S}: resources.ray-address = \"{CODE}\": expected 'local', 'auto', 'host:port'",),
        ),
        id="python-in-ray-address",
    ),
    pytest.param(
        Case(
            edit("train.parquet", "$(touch PWNED).parquet", HUB),
            (f"{S}: mnist: data-files.train not found: {T}/$(touch PWNED).parquet",),
        ),
        id="shell-in-data-path",
    ),
    # extreme strings and keys
    pytest.param(
        Case(
            edit('name = "digits-smoke"', 'name = "' + "a" * 200_000 + '"'),
            ("name: String should match pattern", "... (200002 characters))"),
        ),
        id="very-long-string",
    ),
    pytest.param(
        Case(
            edit("seed = 0", "seed = 0\n" + "k" * 100_000 + " = 1"), ("... (100000 characters): unknown key",)
        ),
        id="very-long-key",
    ),
    pytest.param(
        Case(edit("rounds = 3", 'rounds = 3\n"a\\u0000b" = 1'), ("federation.'a\\x00b': unknown key",)),
        id="nul-in-key",
    ),
    pytest.param(
        Case(edit("rounds = 3", 'rounds = 3\n"a\\nb" = 1'), ("federation.'a\\nb': unknown key",)),
        id="newline-in-key",
    ),
    # data paths, refused when the data is loaded (before Ray starts)
    pytest.param(
        Case(HUB, (f"{S}: mnist: data-files.train not found: {T}/train.parquet",)), id="data-file-missing"
    ),
    pytest.param(
        Case(
            HUB,
            (f"{S}: mnist: data-files.train is not a data file (a folder or empty): {T}/train.parquet",),
            setup=hub_file("train.parquet", None),
        ),
        id="data-file-is-a-folder",
    ),
    pytest.param(
        Case(
            HUB,
            (f"{S}: mnist: data-files.train is not a data file (a folder or empty): {T}/train.parquet",),
            setup=hub_file("train.parquet", b""),
        ),
        id="data-file-empty",
    ),
    pytest.param(
        Case(
            HUB,
            (
                f"{S}: mnist: could not read local files ['{T}/train.parquet']",
                "each file must be a parquet or csv table with the columns ['image', 'label']",
            ),
            setup=hub_file("train.parquet", b"not parquet\n" * 50),
        ),
        id="data-file-not-parquet",
    ),
    pytest.param(
        Case(
            edit("train.parquet", "train.txt", HUB),
            (f"{S}: mnist: data-files must all be .parquet or all .csv, got ['{T}/train.txt']",),
            setup=hub_file("train.txt", b"image,label\n"),
        ),
        id="data-file-wrong-suffix",
    ),
    pytest.param(
        Case(
            edit("train.parquet", "train.csv", HUB),
            (f"{S}: mnist: local files ['{T}/train.csv'] lacks column(s) ['image', 'label']",),
            setup=hub_file("train.csv", b"x,y\n1,2\n"),
        ),
        id="data-file-without-the-columns",
    ),
    pytest.param(
        Case(
            edit('{ train = "train.parquet" }', '"train.parquet"', HUB),
            (f"{S}: data.data-files: must be a table ([data.data-files]), got 'train.parquet'",),
        ),
        id="data-files-not-a-table",
    ),
    pytest.param(
        Case(
            edit('"train.parquet"', '""', HUB),
            ("data.data-files.train: String should have at least 1 character (got '')",),
        ),
        id="data-file-empty-path",
    ),
    pytest.param(
        Case(
            edit("train =", "test =", HUB),
            ('data: data-files takes a "train" file and optionally a "test" file',),
        ),
        id="data-files-without-train",
    ),
    pytest.param(
        Case(
            edit('partitioner = "iid"', 'partitioner = "iid"\ndata-files = { train = "t.parquet" }'),
            ("data: 'data-files' is only for online data sets, not 'digits'",),
        ),
        id="data-files-for-offline-data",
    ),
    pytest.param(
        Case(
            edit('dataset = "digits"', 'dataset = "fashion-mnist"'),
            (
                f"{S}: Fashion-MNIST files missing in {T}/no-such-dir: train-images-idx3-ubyte.gz",
                "FEDSIM_FASHION_MNIST_DIR",
            ),
            setup=no_fashion_mnist,
        ),
        id="fashion-mnist-not-installed",
    ),
    pytest.param(
        Case(
            KJV,
            (f"{S}: the KJV text needs the 'bible' program", "apt-get install bible-kjv"),
            setup=no_bible_program,
        ),
        id="kjv-not-installed",
    ),
    pytest.param(
        Case(
            edit("num-clients = 3", "num-clients = 100000"),
            (f"{S}: cannot split 1347 examples among 100000 clients",),
        ),
        id="more-clients-than-examples",
    ),
    pytest.param(
        Case(
            edit("client-cpus = 1", "client-cpus = 1024"),
            (f"{S}: resources.client-cpus = 1024", "CPUs; lower it"),
        ),
        id="more-cpus-than-the-machine",
    ),
    # output folder
    pytest.param(
        Case(VALID, (f"{T}/out: exists and is not a directory",), setup=out_is_file), id="out-is-a-file"
    ),
    pytest.param(
        Case(VALID, (f"{T}/out: not empty and not a complete fedsim run",), setup=out_is_foreign_folder),
        id="out-is-a-foreign-folder",
    ),
    # --set overrides and options
    pytest.param(
        Case(VALID, ("--set 'federation.rounds': expected KEY=VALUE",), args=("--set", "federation.rounds")),
        id="set-without-equals",
    ),
    pytest.param(
        Case(VALID, ("--set '=3': expected KEY=VALUE",), args=("--set", "=3")), id="set-without-key"
    ),
    pytest.param(
        Case(
            VALID,
            (f"{S} (with --set federation.bogus=1): federation.bogus: unknown key",),
            args=("--set", "federation.bogus=1"),
        ),
        id="set-unknown-key",
    ),
    pytest.param(
        Case(
            VALID,
            ("federation.rounds: Input should be a valid integer (got 'many')",),
            args=("--set", "federation.rounds=many"),
        ),
        id="set-bad-value",
    ),
    pytest.param(
        Case(VALID, ("--set 'name.x=1': 'name' is not a table",), args=("--set", "name.x=1")),
        id="set-into-a-value",
    ),
    pytest.param(
        Case(
            VALID,
            ("--set 'federation={rounds=2}': sets one key, not a whole table",),
            args=("--set", "federation={rounds=2}"),
        ),
        id="set-whole-table",
    ),
    pytest.param(
        Case(
            VALID,
            ("federation.rounds: Input should be a valid integer (got '[[[", "... (2002 characters))"),
            args=("--set", "federation.rounds=" + "[" * 2000),
        ),
        id="set-nested-too-deeply",
    ),
    pytest.param(
        Case(VALID, (f"{S}: --quick applies to sweep files (with a [sweep] table) only",), args=("--quick",)),
        id="quick-without-sweep",
    ),
    pytest.param(
        Case(
            VALID + '\n[sweep]\n"privacy.target-delta" = [1e-5, 2.0]\n',
            (f"{S} (sweep run target-delta-2): privacy.target-delta: Input should be less than 1 (got 2.0)",),
        ),
        id="sweep-with-a-bad-run",
    ),
]


def _write(case: Case, tmp_path: Path) -> Path:
    path = tmp_path / case.path
    if isinstance(case.text, bytes):
        path.write_bytes(case.text)
    elif case.text is not None:
        path.write_text(case.text, encoding="utf-8")
    return path


def _expected(case: Case, path: Path, tmp_path: Path) -> list[str]:
    return [e.replace(S, str(path)).replace(T, str(tmp_path)) for e in case.expected]


def _snapshot(path: Path) -> object:
    if path.is_dir():
        return sorted((str(p.relative_to(path)), p.read_bytes()) for p in path.rglob("*") if p.is_file())
    return path.read_bytes() if path.exists() else None


def _ray_must_not_start(*args, **kwargs):
    raise AssertionError("the case reached Flower's run_simulation (Ray would start)")


def test_the_valid_bases_are_valid():
    # Each case's file differs from one of these by one problem: that problem is what is refused.
    assert validate_scenario(tomllib.loads(VALID), source="valid").name == "digits-smoke"
    assert validate_scenario(tomllib.loads(HUB), source="hub").data.data_files == {"train": "train.parquet"}
    assert validate_scenario(tomllib.loads(KJV), source="kjv").data.partitioner == "natural-id"


def test_at_least_36_cases():
    assert len(CASES) >= 36


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_error_line_and_exit_2(case, tmp_path, monkeypatch, capsys):
    # Arrange
    monkeypatch.chdir(tmp_path)  # code in the file would create PWNED here
    monkeypatch.setattr("fedsim.simulation.run.run_simulation", _ray_must_not_start)
    if case.setup is not None:
        case.setup(tmp_path, monkeypatch)
    path = _write(case, tmp_path)
    out = tmp_path / "out"
    before = _snapshot(out)
    # Act
    try:
        code = main(["run", str(path), "--out", str(out), *case.args])
    except SystemExit as exit_:  # argparse
        code = exit_.code
    captured = capsys.readouterr()
    # Assert
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2, captured.err
    assert "Traceback" not in captured.err + captured.out
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert len(lines[0]) < 1000 + sum(map(len, case.args))  # long input is clipped, not echoed whole
    for expected in _expected(case, path, tmp_path):
        assert expected in lines[0]
    assert _snapshot(out) == before and complete_summary(out) is None  # nothing written, nothing complete
    assert not list(tmp_path.glob(".out.*"))  # no half-written run folder left behind
    assert not (tmp_path / "PWNED").exists()


def test_argparse_errors_exit_2_without_traceback(capsys):
    # Act
    with pytest.raises(SystemExit) as exit_:
        main(["run", "scenario.toml", "--rounds", "3"])
    # Assert: argparse's own format, a usage line then the error
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    assert err.splitlines()[-1] == "fedsim: error: unrecognized arguments: --rounds 3"


def _case(name: str) -> Case:
    return next(p.values[0] for p in CASES if p.id == name)


def test_command_line_exits_2_end_to_end(tmp_path):
    # Arrange: three cases: a value out of range, a file tomllib cannot read, unreadable data
    # (whose loader's own error log must not reach the terminal)
    runs = {}
    for name in ("delta-one", "nested-too-deeply", "data-file-not-parquet"):
        case, folder = _case(name), tmp_path / name
        folder.mkdir()
        if case.setup is not None:
            case.setup(folder, None)
        runs[name] = (case, folder, _write(case, folder))
    # Act: the real command, three at once (each spends seconds importing torch)
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "fedsim.cli", "run", str(path), "--out", str(folder / "out")],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (case, folder, path) in runs.items()
    }
    outputs = {name: (*proc.communicate(timeout=120), proc.returncode) for name, proc in procs.items()}
    # Assert
    for name, (stdout, stderr, returncode) in outputs.items():
        case, folder, path = runs[name]
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert returncode == 2, (name, stderr)
        assert "Traceback" not in stderr + stdout
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, lines)
        for expected in _expected(case, path, folder):
            assert expected in lines[0]
        assert not (folder / "out").exists()
