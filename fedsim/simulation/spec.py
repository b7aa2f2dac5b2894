"""What one simulated run needs: the per-layer specs it hands down, and where it runs."""

from __future__ import annotations

from dataclasses import dataclass

from fedsim.aggregation.federation import FederationSpec
from fedsim.audit import AuditSpec
from fedsim.client import EvaluationSpec, TrainSpec
from fedsim.data import DataSpec
from fedsim.models import ModelSpec
from fedsim.partition import PartitionSpec
from fedsim.privacy import DPSGDSpec, PrivacyBudget, StoppingRule
from fedsim.simulation.faults import FaultSpec


@dataclass(frozen=True)
class SimulationSpec:
    """Where and how the Flower simulation runs on Ray.

    Args:
        client_cpus: CPUs reserved per simulated client (Ray actor), > 0.
        client_gpus: GPU fraction per client, ≥ 0 (e.g. 0.25: four clients per GPU).
        ray_address: ``"local"`` to start a private Ray instance, or the address
            of an existing cluster (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``).
        round_timeout: seconds the server waits for a round's replies; a client
            that has not replied by then counts as failed (Flower's ``timeout``).

    Raises:
        ValueError: for ``client_cpus`` ≤ 0, ``client_gpus`` < 0 or ``round_timeout`` ≤ 0.
    """

    client_cpus: float
    client_gpus: float
    ray_address: str
    round_timeout: float

    def __post_init__(self) -> None:
        if self.client_cpus <= 0 or self.client_gpus < 0:
            raise ValueError("client_cpus must be > 0 and client_gpus ≥ 0")
        if self.round_timeout <= 0:
            raise ValueError(f"round_timeout must be > 0, got {self.round_timeout}")


@dataclass(frozen=True)
class RunSpec:
    """One run as the frozen specs of each layer (built by :mod:`fedsim.scenario`; no TOML keys).

    The simulation layer hands each layer only its own spec: the ClientApp gets
    data, partition, model, train, privacy, dp_sgd and faults; the server's
    privacy accounting gets privacy and stopping; the strategy gets the
    federation; the audit gets its own.

    Attributes:
        name: the scenario's name.
        seed: the run's seed (≥ 0); every random component derives its own stream from it.
        privacy: the budget (both levels of DP, ε, δ, σ, tiers).
        dp_sgd: how clients run Opacus DP-SGD (grad-sample mode, secure mode).
        stopping: when too few clients with sample-level budget left end the run.
        data: the data set and how its examples are made.
        partition: how the training set is split among the clients.
        model: the architecture.
        train: each client's local training.
        federation: clients, rounds, the strategy and whether it aggregates with SecAgg+.
        simulation: where the simulation runs (Ray, resources) and the round timeout.
        evaluation: how the server tests the global model after each round.
        audit: the membership-inference audit of the final model.
        faults: client failures injected on purpose.
    """

    name: str
    seed: int
    data: DataSpec
    partition: PartitionSpec
    model: ModelSpec
    train: TrainSpec
    privacy: PrivacyBudget
    dp_sgd: DPSGDSpec
    stopping: StoppingRule
    federation: FederationSpec
    simulation: SimulationSpec
    evaluation: EvaluationSpec
    audit: AuditSpec
    faults: FaultSpec
