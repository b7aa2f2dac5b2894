"""How the federation is simulated: clients, rounds, sampling and resources."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FederationSpec:
    """The federation and its Flower/Ray simulation settings.

    Args:
        num_clients: registered clients (Flower SuperNodes), ≥ 1.
        rounds: FL rounds, ≥ 1.
        fraction_train: share of clients sampled per round (the cohort), in ``(0, 1]``.
        strategy: Flower strategy name (``fedavg``, ``fedavgm``).
        server_learning_rate: FedAvgM's server step size (1.0: plain FedAvg step).
        server_momentum: FedAvgM's server momentum in ``[0, 1)`` (Hsu et al. 2019,
            https://arxiv.org/abs/1909.06335); 0 for FedAvg.
        client_cpus: CPUs reserved per simulated client (Ray actor), > 0.
        client_gpus: GPU fraction per client, ≥ 0 (e.g. 0.25: four clients per GPU).
        ray_address: ``"local"`` to start a private Ray instance, or the address
            of an existing cluster (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``).
        round_timeout: seconds the server waits for a round's replies; a client
            that has not replied by then counts as failed (Flower's ``timeout``).
    """

    num_clients: int
    rounds: int
    fraction_train: float
    strategy: str
    server_learning_rate: float
    server_momentum: float
    client_cpus: float
    client_gpus: float
    ray_address: str
    round_timeout: float = 3600.0

    def __post_init__(self) -> None:
        if self.num_clients < 1 or self.rounds < 1:
            raise ValueError("num_clients and rounds must be ≥ 1")
        if not 0 < self.fraction_train <= 1:
            raise ValueError(f"fraction_train must be in (0, 1], got {self.fraction_train}")
        if self.client_cpus <= 0 or self.client_gpus < 0:
            raise ValueError("client_cpus must be > 0 and client_gpus ≥ 0")

    def strategy_options(self) -> dict[str, float]:
        """The strategy's own constructor arguments: FedAvgM's server step, nothing for FedAvg.

        Example:
            >>> FederationSpec(10, 5, 1.0, "fedavgm", 1.0, 0.5, 1.0, 0.0, "local").strategy_options()
            {'server_learning_rate': 1.0, 'server_momentum': 0.5}
        """
        if self.strategy != "fedavgm":
            return {}
        return {"server_learning_rate": self.server_learning_rate, "server_momentum": self.server_momentum}
