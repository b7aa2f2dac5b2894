"""The Flower ClientApp: one simulated client's training round.

Each message from the server carries the global model's arrays. The client
loads its shard (cached per Ray worker process), trains locally with plain
PyTorch (:func:`fedsim.client.train`), under Opacus DP-SGD when the scenario
asks for sample-level DP, and replies with its new arrays and metrics,
including its :class:`fedsim.privacy.PrivacyEvent` parameters for the
server's ledger.
"""

from __future__ import annotations

import numpy as np
import torch
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from torch import nn

from fedsim.aggregation.user_dp import client_mods
from fedsim.client import TrainMetrics, attach_proximal_term, create_data_loader, create_optimizer, train
from fedsim.models import build_model
from fedsim.privacy import PrivacyBudget, PrivacyEvent, make_private, make_trainable, plain_state_dict
from fedsim.privacy.canaries import apply_test_noise_divisor, attach_dirac_canaries
from fedsim.simulation.client_task import ClientTask
from fedsim.simulation.faults import inject_fault
from fedsim.simulation.shards import client_shard, training_shard


def get_device() -> torch.device:
    """CUDA when a GPU is visible to this worker, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _round_seed(seed: int, partition_id: int, server_round: int) -> int:
    """A distinct, reproducible seed per (run seed, client, round)."""
    return int(np.random.SeedSequence([seed, partition_id, server_round]).generate_state(1)[0])


def _private(
    task: ClientTask,
    *,
    model,
    optimizer,
    criterion,
    loader,
    partition_id: int,
    num_examples: int,
    seed: int,
    device,
):
    """Opacus DP-SGD around the client's model, optimiser, loss and loader, with the planned σ.

    Returns:
        ``(private, plan)``: Opacus's wrapped objects (:class:`fedsim.privacy.PrivateTraining`;
        close it when training ends) and the client's planned :class:`fedsim.privacy.PrivacyEvent`.
    """
    plan, _ = task.planner.plan(partition_id, num_examples)
    noise_generator = torch.Generator(device=device)
    noise_generator.manual_seed(seed + 1)
    private = make_private(
        module=model,
        optimizer=optimizer,
        criterion=criterion,
        data_loader=loader,
        noise_multiplier=plan.noise_multiplier,
        max_grad_norm=task.privacy.max_grad_norm,
        grad_sample_mode=task.dp_sgd.grad_sample_mode,
        noise_generator=noise_generator,
        secure_mode=task.dp_sgd.secure_mode,
    )
    apply_test_noise_divisor(private.optimizer)  # test-only; a no-op unless its variable is set
    return private, plan


def _with_canaries(
    task: ClientTask, optimizer, model, *, partition_id: int, seed: int, rate: float, private: bool
) -> None:
    """Attach the client's included Dirac canaries (if the run plans any) to its optimiser's steps."""
    canaries = task.canaries
    if canaries is None:
        return
    attach_dirac_canaries(
        optimizer,
        model,
        canaries.held_by(partition_id),
        norm=canaries.norm,
        sample_rate=rate,
        batch_size=task.train.batch_size,
        seed=seed + 2,  # the loader draws from seed, the noise from seed + 1
        private=private,
    )


def _train(
    task: ClientTask, model: nn.Module, loader, *, partition_id: int, seed: int, device, proximal_mu: float
) -> tuple[TrainMetrics, PrivacyEvent | None]:
    """Train ``model`` in place for the round: plain PyTorch, or under Opacus DP-SGD.

    FedProx's proximal term (``proximal_mu`` > 0) is attached to the plain
    optimiser, which Opacus steps after clipping and noise: it costs no privacy.

    Under DP-SGD, Opacus's wrapper is closed when training ends, even on an error:
    its hooks hold it in a reference cycle with the model, which would keep it, with
    the optimiser, loader and per-sample gradients it reaches, alive until Python's
    cyclic garbage collector runs (:meth:`fedsim.privacy.PrivateTraining.close`).

    Returns:
        ``(result, event)``: the training metrics and, under DP-SGD, the round's privacy
        event (the planned σ, the Poisson rate q of Opacus's loader, which the ledger checks
        against the plan's, and the steps taken), else None.
    """
    optimizer = create_optimizer(model, task.train)
    attach_proximal_term(optimizer, model, proximal_mu)
    criterion: nn.Module = nn.CrossEntropyLoss()
    schedule = {"epochs": task.train.local_epochs, "device": device, "max_steps": task.train.local_steps}
    canary = {"partition_id": partition_id, "seed": seed}
    if not task.privacy.is_sample_level:
        rate = min(1.0, task.train.batch_size / max(len(loader.dataset), 1))
        _with_canaries(task, optimizer, model, rate=rate, private=False, **canary)
        return train(model, loader, optimizer=optimizer, criterion=criterion, **schedule), None
    private, plan = _private(
        task,
        model=model,
        optimizer=optimizer,
        criterion=criterion,
        loader=loader,
        partition_id=partition_id,
        num_examples=len(loader.dataset),
        seed=seed,
        device=device,
    )
    _with_canaries(task, private.optimizer, model, rate=private.sample_rate, private=True, **canary)
    with private:  # removes Opacus's hooks: the wrapper goes with its last reference
        result = train(
            private.module,
            private.data_loader,
            optimizer=private.optimizer,
            criterion=private.criterion,
            **schedule,
        )
    return result, PrivacyEvent(plan.noise_multiplier, private.sample_rate, result.steps)


def run_client_round(
    task: ClientTask,
    *,
    partition_id: int,
    server_round: int,
    state_dict: dict[str, torch.Tensor],
    proximal_mu: float = 0.0,
) -> tuple[dict[str, torch.Tensor], dict[str, float | int]]:
    """One client's local training for one round, without Flower: plain PyTorch, under DP-SGD if asked.

    Args:
        task: the run's :class:`~fedsim.simulation.client_task.ClientTask`.
        partition_id: the client (0-based).
        server_round: the round (from 1); seeds sampling and noise.
        state_dict: the global model's weights.
        proximal_mu: FedProx's proximal weight μ (0: FedAvg's local training).

    Returns:
        ``(state_dict, metrics)``: the unwrapped model's new weights (CPU) and
        ``num-examples``, ``train-loss``, ``partition-id``, ``steps`` and,
        under DP, the round's privacy event
        (:meth:`fedsim.privacy.PrivacyEvent.to_metrics`: ``noise-multiplier``, ``sample-rate``).
    """
    shard = training_shard(task.data, task.partition, partition_id, task.input_canaries)
    device = get_device()
    seed = _round_seed(task.seed, partition_id, server_round)
    model = build_model(
        task.model, input_shape=shard.input_shape, num_classes=shard.num_classes, vocab_size=shard.vocab_size
    )
    model.load_state_dict(state_dict)
    if task.privacy.is_sample_level:
        model = make_trainable(model, task.dp_sgd.dp_lstm)  # nn.LSTM -> a DP-ready LSTM, same weights
    model.to(device)
    loader = create_data_loader(shard, batch_size=task.train.batch_size, shuffle=True, seed=seed)
    result, event = _train(
        task, model, loader, partition_id=partition_id, seed=seed, device=device, proximal_mu=proximal_mu
    )
    metrics: dict[str, float | int] = {"partition-id": partition_id}
    if event is not None:  # the round's privacy event, for the server's ledger
        metrics.update(event.to_metrics())
    metrics.update({"num-examples": result.num_examples, "train-loss": result.loss, "steps": result.steps})
    # The unwrapped module's weights under the plain model's names (Opacus's wrapper
    # would prefix "_module."; DPLSTM lists each weight under two names).
    return plain_state_dict(model.cpu(), state_dict.keys()), metrics


BLOCKED_CLIENTS_KEY = "blocked-clients"
"""Train-config key: partition ids whose privacy budget forbids training this round."""

PROXIMAL_MU_KEYS = ("proximal-mu", "proximal_mu")
"""Train-config keys of FedProx's μ: Flower's ``FedProx`` sends the first, its legacy class the second."""


def proximal_mu(config) -> float:
    """FedProx's μ from a round's train config (0.0 if the strategy sent none).

    Example:
        >>> proximal_mu({"proximal-mu": 0.1}), proximal_mu({"proximal_mu": 0.5}), proximal_mu({})
        (0.1, 0.5, 0.0)
    """
    return next((float(config[k]) for k in PROXIMAL_MU_KEYS if k in config), 0.0)


def client_round(
    task: ClientTask, *, partition_id: int, server_round: int, state_dict: dict[str, torch.Tensor], config
) -> tuple[dict[str, torch.Tensor], dict[str, float | int]]:
    """Answer one training request: train, or skip when the server blocked this client.

    A client listed under :data:`BLOCKED_CLIENTS_KEY` in ``config`` (its next round
    would exceed its privacy budget) does not touch its data: it returns the
    global weights unchanged with ``skipped = 1`` and ``weight = 0`` (left out of the average).

    Args:
        task: the run's :class:`~fedsim.simulation.client_task.ClientTask`.
        partition_id: the client (0-based).
        server_round: the round (from 1).
        state_dict: the global model's weights.
        config: the round's train config (a mapping; Flower's ``ConfigRecord``).

    Returns:
        ``(state_dict, metrics)`` as :func:`run_client_round`, with ``weight`` (the
        client's aggregation weight) and ``skipped`` (0 or 1) added.
    """
    if partition_id in {int(b) for b in config.get(BLOCKED_CLIENTS_KEY, [])}:
        # Weight 0: not averaged. Under user-level DP the round's release then averages
        # fewer updates, which the recorder accounts as less noise.
        metrics = {"partition-id": partition_id, "num-examples": 0, "steps": 0, "skipped": 1, "weight": 0}
        return {k: v.detach().clone() for k, v in state_dict.items()}, metrics
    new_state, metrics = run_client_round(
        task,
        partition_id=partition_id,
        server_round=server_round,
        state_dict=state_dict,
        proximal_mu=proximal_mu(config),
    )
    metrics["skipped"] = 0
    metrics["weight"] = aggregation_weight(task.privacy, int(metrics["num-examples"]))
    return new_state, metrics


def aggregation_weight(privacy: PrivacyBudget, num_examples: int) -> int:
    """A client's FedAvg weight: its example count, or 1 under user-level DP.

    DP-FedAvg's noise is calibrated to a uniform average of clipped updates
    (McMahan et al. 2018, https://arxiv.org/abs/1710.06963), so user-level DP
    averages clients with equal weights.
    """
    return 1 if privacy.is_user_level else num_examples


def create_client_app(task: ClientTask) -> ClientApp:
    """Build the ClientApp for a scenario.

    Args:
        task: the run's :class:`~fedsim.simulation.client_task.ClientTask` (small, frozen;
            pickled to the Ray workers with the app).

    Returns:
        A ``ClientApp`` whose ``train`` handler first injects the scenario's
        ``[faults]`` (:func:`fedsim.simulation.faults.inject_fault`), then runs
        :func:`client_round` on the message's ``"arrays"`` and replies with
        ``"arrays"`` and ``"metrics"``; its ``query`` handler loads the client's
        data and replies with its ``partition-id``
        (:func:`fedsim.simulation.server_app.query_clients`).
    """
    app = ClientApp()

    @app.train(mods=client_mods(task.privacy.user_level))  # clipping applies to training replies only
    def handle_train(msg: Message, context: Context) -> Message:
        config = msg.content["config"]
        partition_id, server_round = int(context.node_config["partition-id"]), int(config["server-round"])
        inject_fault(task.faults, partition_id=partition_id, server_round=server_round)
        state_dict, metrics = client_round(
            task,
            partition_id=partition_id,
            server_round=server_round,
            state_dict=msg.content["arrays"].to_torch_state_dict(),
            config=config,
        )
        reply = RecordDict({"arrays": ArrayRecord(state_dict), "metrics": MetricRecord(metrics)})
        return Message(content=reply, reply_to=msg)

    @app.query()
    def handle_query(msg: Message, context: Context) -> Message:
        partition_id = int(context.node_config["partition-id"])
        client_shard(task.data, task.partition, partition_id)  # loads (and caches) the data in this worker
        reply = RecordDict({"metrics": MetricRecord({"partition-id": partition_id})})
        return Message(content=reply, reply_to=msg)

    return app
