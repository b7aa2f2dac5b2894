"""What a simulated client needs to train: the frozen specs of the layers below it, and nothing else."""

from __future__ import annotations

from dataclasses import dataclass

from fedsim.audit.canaries import DiracCanaries
from fedsim.audit.input_canaries import InputCanaries
from fedsim.client import TrainSpec
from fedsim.data import DataSpec
from fedsim.models import ModelSpec
from fedsim.partition import PartitionSpec
from fedsim.privacy import DPSGDSpec
from fedsim.privacy.planning import RoundPlanner
from fedsim.simulation.faults import FaultSpec


@dataclass(frozen=True)
class ClientTask:
    """The settings every ClientApp of a run shares (small and frozen: pickled to the Ray workers).

    Args:
        data: the data set to load (cached per worker).
        partition: how its training set is split (client ``k`` holds shard ``k``).
        model: the architecture to build from the global weights.
        train: local training (epochs or steps, batch size, optimiser).
        planner: the DP-SGD round each client runs (it holds the run's privacy budget).
        dp_sgd: how Opacus runs that round (grad-sample mode, secure mode).
        faults: client failures to inject on purpose.
        seed: the run's seed (each client's per-round seed derives from it).
        canaries: the run's Dirac canaries (each client trains on those it holds), or None.
        input_canaries: the run's mislabelled input canaries (likewise), or None.
    """

    data: DataSpec
    partition: PartitionSpec
    model: ModelSpec
    train: TrainSpec
    planner: RoundPlanner
    dp_sgd: DPSGDSpec
    faults: FaultSpec
    seed: int
    canaries: DiracCanaries | None = None
    input_canaries: InputCanaries | None = None

    @property
    def privacy(self):
        """The run's :class:`fedsim.privacy.PrivacyBudget` (the planner's)."""
        return self.planner.budget
