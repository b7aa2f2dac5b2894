"""Per-round checkpoints of a run, and reading them back for ``fedsim run --resume``.

After every round the run's directory gets, each file replaced atomically
(written to a temporary sibling, then renamed over the old one):

- ``rounds.csv``: the rounds so far (:func:`fedsim.results.store.write_progress`);
- ``checkpoint.pt``: the global model's weights and the server's state after
  that round (:meth:`fedsim.simulation.session.RunSession.state_dict`: round
  records, both privacy ledgers, stopped clients, the strategy's server state
  named by its registry entry, adaptive clipping norm), plus the resolved
  scenario it belongs to.

Random state needs no entry: cohorts, client seeds, injected faults and the
server's DP noise are all drawn from ``(seed, round)``, so a resumed run
samples, trains and noises round ``t`` exactly as the uninterrupted run would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fedsim.results.store import CHECKPOINT_FILE, RunDirError, complete_summary, replace_file, write_progress

CHECKPOINT_VERSION = 2
"""2: privacy state and the strategy's server state in their own entries (1: recorder fields)."""


@dataclass(frozen=True)
class Checkpoint:
    """A run's state after its last complete round.

    Attributes:
        scenario: the resolved scenario (kebab-case TOML dict).
        state: the run's server-side state (:meth:`fedsim.simulation.session.RunSession.state_dict`);
            ``state["round"]``
            is the last complete round.
        arrays: the global model's weights after that round.
        wall_s: seconds the run had taken until then.
    """

    scenario: dict[str, Any]
    state: dict[str, Any]
    arrays: dict[str, torch.Tensor]
    wall_s: float

    @property
    def round(self) -> int:
        """The last complete round."""
        return int(self.state["round"])


def write_checkpoint(run_dir: Path, checkpoint: Checkpoint) -> None:
    """Write ``rounds.csv`` and ``checkpoint.pt`` for the round just completed (each atomically).

    ``checkpoint.pt`` is written last, so it never points past the rounds in ``rounds.csv``.
    """
    from fedsim.results import RoundRecord

    rounds = [RoundRecord(**r) for r in checkpoint.state["rounds"]]
    write_progress(run_dir, scenario=checkpoint.scenario, rounds=rounds)
    payload = {
        "version": CHECKPOINT_VERSION,
        "scenario": checkpoint.scenario,
        "state": checkpoint.state,
        "arrays": checkpoint.arrays,
        "wall_s": checkpoint.wall_s,
    }
    replace_file(run_dir / CHECKPOINT_FILE, lambda path: torch.save(payload, path))


def read_checkpoint(run_dir: Path) -> Checkpoint:
    """The checkpoint of an interrupted run in ``run_dir``.

    Loaded with ``torch.load(weights_only=True)``: tensors and plain values
    only, nothing in the file is executed.

    Raises:
        RunDirError: if ``run_dir`` is missing, already complete, has no
            checkpoint, or the checkpoint is unreadable or of another version.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: no such run directory")
    if complete_summary(run_dir) is not None:
        raise RunDirError(f"{run_dir}: the run is already complete; nothing to resume")
    path = run_dir / CHECKPOINT_FILE
    if not path.is_file():
        raise RunDirError(
            f"{run_dir}: no {CHECKPOINT_FILE}; a run can be resumed once it has evaluated its initial model"
        )
    try:
        payload = torch.load(path, weights_only=True)
    except Exception:  # noqa: BLE001 - torch's reasons are many lines long; any of them is the same error
        raise RunDirError(
            f"{path}: not a fedsim checkpoint (unreadable, or holds more than tensors and plain values)"
        ) from None
    version = payload.get("version") if isinstance(payload, dict) else None
    if version == 1 and isinstance(payload.get("state"), dict) and _V1_KEYS <= set(payload["state"]):
        payload = {**payload, "state": _from_version_1(payload["state"], payload.get("scenario"))}
    elif version != CHECKPOINT_VERSION:
        raise RunDirError(f"{path}: checkpoint version {version!r}, expected {CHECKPOINT_VERSION}")
    state = payload.get("state")
    if (
        not isinstance(state, dict)
        or not _STATE_KEYS <= set(state)
        or not isinstance(payload.get("arrays"), dict)
    ):
        raise RunDirError(f"{path}: incomplete checkpoint (its state or weights are missing)")
    return Checkpoint(
        scenario=payload["scenario"], state=state, arrays=payload["arrays"], wall_s=float(payload["wall_s"])
    )


_STATE_KEYS = frozenset({"round", "rounds", "rounds_trained", "first_error", "privacy", "server"})
"""What :meth:`fedsim.simulation.session.RunSession.state_dict` returns."""

_V1_KEYS = frozenset(
    {"round", "rounds", "ledger", "user_ledger", "stopped_round", "rounds_trained", "first_error", "momentum"}
)
"""What a version-1 checkpoint's state holds (fedsim before the privacy accounting had its own state)."""


def _from_version_1(state: dict, scenario) -> dict:
    """A version-1 checkpoint's state in today's layout, so that runs interrupted before an upgrade resume.

    Version 1 kept the privacy ledgers, the stopped clients and FedAvgM's momentum
    beside the round records; version 2 groups them as
    :meth:`fedsim.simulation.session.RunSession.state_dict` does.
    """
    from fedsim.aggregation import get_strategy_entry

    strategy = (scenario or {}).get("federation", {}).get("strategy", "fedavg")
    server_state = get_strategy_entry(strategy).server_state
    return {
        "round": state["round"],
        "rounds": state["rounds"],
        "rounds_trained": state["rounds_trained"],
        "first_error": state["first_error"],
        "privacy": {
            "ledger": state["ledger"],
            "user_ledger": [(r, z, rate) for r, z, rate, _ in state["user_ledger"]],
            "stopped_round": state["stopped_round"],
        },
        "server": {
            "strategy": {"momentum_vector": state["momentum"]} if "momentum_vector" in server_state else {},
            "clipping": state.get("clipping", {}),
        },
    }
