"""Per-round checkpoints: what they hold, how they are read back, and what is refused."""

import pickle

import pytest
import torch

from fedsim.privacy import compute_epsilon
from fedsim.privacy.events import UserLevelRelease
from fedsim.results import RoundRecord
from fedsim.results.store import RunDirError, check_writable_run_dir, is_progress_dir
from fedsim.simulation.checkpoint import Checkpoint, read_checkpoint, write_checkpoint
from fedsim.simulation.recorder import RoundRecorder
from fedsim.simulation.session import RunSession
from tests.fixtures.cli import read_csv
from tests.privacy.test_accounting import PLAN, accounting


def session(user_target: float) -> RunSession:
    return RunSession(
        RoundRecorder(test_set=None, model=None, device=None, round_test_set=None, last_round=0),
        accounting(user_target),
    )


def a_checkpoint() -> Checkpoint:
    rec = session(user_target=100.0)
    rec.recorder.rounds = [
        RoundRecord(0, 0.1, 2.3, 0.0, 0.0, 0, 0, None, 0.0),
        RoundRecord(1, 0.5, 1.2, 9.1, 9.1, 3, 1, 0.9, 2.0),
    ]
    rec.privacy.guard.stopped_round[0] = 2
    return Checkpoint(
        {"name": "x", "seed": 3}, rec.state_dict(), {"w": torch.arange(6.0).reshape(2, 3)}, 12.5
    )


def test_a_checkpoint_round_trips_and_restores_the_ledgers(tmp_path):
    # Arrange
    written = a_checkpoint()
    # Act
    write_checkpoint(tmp_path, written)
    read = read_checkpoint(tmp_path)
    fresh = session(user_target=100.0)
    fresh.privacy.ledger._history.clear()
    fresh.privacy.user.ledger._history.clear()
    fresh.load_state_dict(read.state)
    # Assert
    assert read.round == 1 and read.wall_s == 12.5 and read.scenario == {"name": "x", "seed": 3}
    assert torch.equal(read.arrays["w"], written.arrays["w"])
    assert fresh.recorder.rounds[1].accuracy == 0.5 and fresh.privacy.guard.stopped_round == {0: 2}
    assert fresh.privacy.ledger.epsilon(1) == compute_epsilon(
        (PLAN.as_history_entry(),), delta=1e-5, accountant="rdp"
    )
    assert fresh.privacy.user.ledger.history() == [(1, UserLevelRelease(2.0, 1.0))]
    assert [r["round"] for r in read_csv(tmp_path / "rounds.csv")] == ["0", "1"]
    assert is_progress_dir(tmp_path) and not list(tmp_path.glob(".*"))  # no temporary file left


def test_an_interrupted_run_is_not_overwritten_by_a_new_one(tmp_path):
    write_checkpoint(tmp_path, a_checkpoint())
    with pytest.raises(RunDirError, match=f"continue it with 'fedsim run --resume {tmp_path}'"):
        check_writable_run_dir(tmp_path)
    check_writable_run_dir(tmp_path, progress=True)  # the run itself may finish it


class Boom:
    def __reduce__(self):
        return (print, ("executed",))


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: None, "no checkpoint.pt; a run can be resumed once it has evaluated its initial model"),
        (lambda d: (d / "checkpoint.pt").write_bytes(b"not a checkpoint"), "not a fedsim checkpoint"),
        (lambda d: (d / "checkpoint.pt").write_bytes(pickle.dumps(Boom())), "not a fedsim checkpoint"),
        (lambda d: torch.save({"version": 99}, d / "checkpoint.pt"), "checkpoint version 99, expected 2"),
        (lambda d: torch.save({"version": 2, "state": {}}, d / "checkpoint.pt"), "incomplete checkpoint"),
        (lambda d: (d / "summary.json").write_text('{"status": "complete"}'), "already complete"),
    ],
)
@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_what_cannot_be_resumed_is_named(tmp_path, capsys, setup, message):
    setup(tmp_path)
    with pytest.raises(RunDirError, match=message) as raised:
        read_checkpoint(tmp_path)
    assert "\n" not in str(raised.value)  # one line
    assert "executed" not in capsys.readouterr().out  # nothing in the file ran


def test_a_missing_directory_cannot_be_resumed(tmp_path):
    with pytest.raises(RunDirError, match="no such run directory"):
        read_checkpoint(tmp_path / "nope")


def test_a_version_1_checkpoint_is_read_in_todays_layout(tmp_path):
    # Arrange: the state fedsim wrote before the privacy accounting had its own (FedAvgM, one round)
    momentum = [torch.ones(2)]
    v1 = {
        "round": 1,
        "rounds": [],
        "ledger": [(0, 1, 1.1, 0.25, 20)],
        "user_ledger": [(1, 2.0, 1.0, 1)],
        "stopped_round": {2: 1},
        "rounds_trained": {0: 1},
        "first_error": None,
        "momentum": momentum,
        "clipping": {},
    }
    scenario = {"name": "x", "federation": {"strategy": "fedavgm"}}
    torch.save(
        {"version": 1, "scenario": scenario, "state": v1, "arrays": {}, "wall_s": 3.0},
        tmp_path / "checkpoint.pt",
    )
    # Act
    state = read_checkpoint(tmp_path).state
    fresh = session(user_target=100.0)
    fresh.privacy.ledger._history.clear()
    fresh.privacy.user.ledger._history.clear()
    fresh.load_state_dict(state)
    # Assert
    assert fresh.privacy.ledger.state_dict() == [(0, 1, 1.1, 0.25, 20)]
    assert fresh.privacy.user.ledger.history() == [(1, UserLevelRelease(2.0, 1.0))]
    assert fresh.privacy.guard.stopped_round == {2: 1} and fresh.recorder.rounds_trained == {0: 1}
    assert torch.equal(state["server"]["strategy"]["momentum_vector"][0], momentum[0])
