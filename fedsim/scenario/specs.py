"""From a validated :class:`~fedsim.scenario.schema.Scenario` to the frozen spec of each layer.

The one place where scenario sections become the layers' specs: each
``*_spec`` function below reads one or two sections and builds one layer's
spec, which carries no defaults of its own (the schema filled them in).
"""

from __future__ import annotations

from fedsim.aggregation.federation import FederationSpec
from fedsim.audit import AuditSpec
from fedsim.client import EvaluationSpec, TrainSpec
from fedsim.data import DataSpec
from fedsim.models import ModelSpec
from fedsim.partition import PartitionSpec
from fedsim.privacy import BudgetTier, DPSGDSpec, PrivacyBudget, StoppingRule, UserLevelDP
from fedsim.scenario.privacy_section import PrivacySection
from fedsim.scenario.schema import HANG_MARGIN_S, Scenario
from fedsim.simulation.faults import FaultSpec
from fedsim.simulation.spec import RunSpec, SimulationSpec


def data_spec(scenario: Scenario) -> DataSpec:
    """The data set and how its examples are made (``[data]``)."""
    d = scenario.data
    return DataSpec(
        dataset=d.dataset,
        data_files=tuple(sorted(d.data_files.items())) if d.data_files else None,
        window_length=d.window_length,
        window_stride=d.window_stride,
        test_fraction=d.test_fraction,
        max_train_windows_per_user=d.max_train_windows_per_user,
        max_test_windows=d.max_test_windows,
        max_train_examples=d.max_train_examples,
        max_test_examples=d.max_test_examples,
        validation_fraction=d.validation_fraction,
    )


def partition_spec(scenario: Scenario) -> PartitionSpec:
    """How the training set is split among ``federation.num-clients`` clients (``[data]``)."""
    d = scenario.data
    return PartitionSpec(
        name=d.partitioner,
        num_partitions=scenario.federation.num_clients,
        seed=scenario.seed,
        alpha=d.alpha,
        min_partition_size=d.min_partition_size,
        classes_per_client=d.classes_per_client,
        shards_per_client=d.shards_per_client,
        shard_size=d.shard_size,
    )


def train_spec(scenario: Scenario) -> TrainSpec:
    """Each client's local training (``[federation]``'s local keys)."""
    f = scenario.federation
    return TrainSpec(
        local_epochs=f.local_epochs,
        batch_size=f.batch_size,
        learning_rate=f.learning_rate,
        momentum=f.momentum,
        local_steps=f.local_steps,
    )


def _user_level(p: PrivacySection) -> UserLevelDP | None:
    """User-level DP-FedAvg's settings, or None when the mode has no user level."""
    if not p.is_user_level:
        return None
    return UserLevelDP(
        noise_multiplier=p.user_noise_multiplier,
        target_epsilon=p.user_target_epsilon,
        clipping=p.clipping,
        clip_on=p.clip_on,
        clipping_norm=p.clipping_norm,
        target_clipped_quantile=p.target_clipped_quantile,
        clip_norm_lr=p.clip_norm_lr,
        clipped_count_stddev=p.clipped_count_stddev,
    )


def privacy_spec(scenario: Scenario) -> PrivacyBudget:
    """Both levels of DP and their budgets (``[privacy]``)."""
    p = scenario.privacy
    return PrivacyBudget(
        mode=p.mode,
        target_epsilon=p.target_epsilon,
        target_delta=p.target_delta,
        noise_multiplier=p.noise_multiplier,
        max_grad_norm=p.max_grad_norm,
        accountant=p.accountant,
        tiers=tuple(
            BudgetTier(share=t.share, target_epsilon=t.target_epsilon, name=t.name or "")
            for t in p.tiers or ()
        ),
        calibrate_for=p.calibrate_for,
        user_level=_user_level(p),
    )


def dp_sgd_spec(scenario: Scenario) -> DPSGDSpec:
    """How clients run Opacus DP-SGD (``[privacy]``'s ``grad-sample-mode`` and ``secure-mode``)."""
    p = scenario.privacy
    return DPSGDSpec(grad_sample_mode=p.grad_sample_mode, secure_mode=p.secure_mode, dp_lstm=p.dp_lstm)


def stopping_rule(scenario: Scenario) -> StoppingRule:
    """When too few clients with budget left end the run (``[privacy]``: min-clients, when-too-few)."""
    p = scenario.privacy
    return StoppingRule(min_clients=p.min_clients, when_too_few=p.when_too_few)


def federation_spec(scenario: Scenario) -> FederationSpec:
    """Clients, rounds, the cohort, the strategy with its options (``[federation]``) and SecAgg+.

    ``secure-aggregation`` is a ``[privacy]`` key, but SecAgg+ is how the server aggregates.
    """
    f = scenario.federation
    return FederationSpec(
        num_clients=f.num_clients,
        rounds=f.rounds,
        fraction_train=f.fraction_train,
        strategy=f.strategy,
        strategy_options=f.strategy_options(),
        secure_aggregation=scenario.privacy.secure_aggregation,
        cohort_sampling=f.cohort_sampling,
    )


def simulation_spec(scenario: Scenario) -> SimulationSpec:
    """Where the simulation runs (``[resources]``) and how long a round may take."""
    r = scenario.resources
    return SimulationSpec(
        client_cpus=r.client_cpus,
        client_gpus=r.client_gpus,
        ray_address=r.ray_address,
        round_timeout=scenario.federation.round_timeout,
    )


def audit_spec(scenario: Scenario) -> AuditSpec:
    """The membership-inference audit (``[audit]``)."""
    a = scenario.audit
    return AuditSpec(
        enabled=a.enabled,
        max_examples=a.max_examples,
        confidence=a.confidence,
        shadow_models=a.shadow_models,
        shadow_epochs=a.shadow_epochs,
        canaries=a.canaries,
        canary_norm=a.canary_norm,
        input_canaries=a.input_canaries,
        seed=scenario.seed,
    )


def fault_spec(scenario: Scenario) -> FaultSpec:
    """Injected client failures (``[faults]``); a hang lasts past the round timeout by default."""
    f = scenario.faults
    return FaultSpec(
        rate=f.rate,
        kind=f.kind,
        hang_s=f.hang_s or scenario.federation.round_timeout + HANG_MARGIN_S,
        seed=scenario.seed,
    )


def build_run_spec(scenario: Scenario) -> RunSpec:
    """The scenario as the frozen per-layer specs of one run (no defaults, no TOML keys).

    Example:
        >>> spec = build_run_spec(Scenario.model_validate({"name": "x", "data": {"dataset": "digits"}}))
        >>> spec.federation.cohort_size, spec.privacy.mode, spec.simulation.ray_address
        (10, 'sample', 'local')
    """
    return RunSpec(
        name=scenario.name,
        seed=scenario.seed,
        data=data_spec(scenario),
        partition=partition_spec(scenario),
        model=ModelSpec(name=scenario.model.name, activation=scenario.model.activation),
        train=train_spec(scenario),
        privacy=privacy_spec(scenario),
        dp_sgd=dp_sgd_spec(scenario),
        stopping=stopping_rule(scenario),
        federation=federation_spec(scenario),
        simulation=simulation_spec(scenario),
        evaluation=EvaluationSpec(round_examples=scenario.evaluation.round_examples),
        audit=audit_spec(scenario),
        faults=fault_spec(scenario),
    )
