"""The sections of a scenario file (``[data]``, ``[model]``, ...) as pydantic models.

Every key, its type, range and default is defined here (and the top-level keys
in :class:`fedsim.scenario.schema.Scenario`); nothing else holds defaults.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fedsim.aggregation.registry import available_strategies, get_strategy_entry
from fedsim.data import available_datasets, dataset_info
from fedsim.models import ACTIVATIONS, available_models
from fedsim.partition import available_partitioners
from fedsim.scenario.errors import kebab


class _Section(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=kebab, populate_by_name=False, strict=True
    )


PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]


def choice(names: list[str] | tuple[str, ...]) -> Any:
    """A ``Literal`` type of a registry's names: one list of names per concept, kept by its registry.

    Example:
        >>> from typing import get_args
        >>> get_args(choice(["iid", "dirichlet"]))
        ('iid', 'dirichlet')
    """
    return Literal[tuple(names)]  # type: ignore[valid-type]


DatasetName = choice(available_datasets())
PartitionerName = choice(available_partitioners())
ModelName = choice(available_models())
ModelActivation = choice(sorted(ACTIVATIONS))
StrategyName = choice(available_strategies())

DEFAULT_DATASET = "fashion-mnist"
"""The data set of a scenario that names none (Debian's ``dataset-fashion-mnist``, offline)."""

DEFAULT_WINDOW_LENGTH = 80
"""Characters per text window (LEAF's Shakespeare, Caldas et al. 2018, https://arxiv.org/abs/1812.01097)."""

DEFAULT_TEST_FRACTION = 0.1
"""Share of each user's data held out when a data set has no test split."""

_PARTITIONER_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # partitioner: (required keys, optional keys)
    "iid": ((), ()),
    "dirichlet": (("alpha",), ("min-partition-size",)),
    "pathological": (("classes-per-client",), ()),
    "shard": (("shards-per-client",), ("shard-size",)),
    "natural-id": ((), ()),
}
_TEXT_KEYS = ("window-length", "max-train-windows-per-user", "max-test-windows")
_WHOLE_TEXT_KEYS = ("window-stride",)  # only for text cut into windows here (kjv)

PositiveInt = Annotated[int, Field(ge=1, le=1_000_000_000)]
FilePath = Annotated[str, Field(min_length=1, max_length=4096)]


def _holds_out(info, data_files: Any) -> bool:
    """Whether a share of the training data is held out for testing (no test split is given)."""
    if isinstance(data_files, dict):
        return "test" not in data_files
    return not info.has_test_split


class DataSection(_Section):
    """``[data]``: the data set, how text is cut into windows, and how data is split among clients."""

    dataset: DatasetName = DEFAULT_DATASET
    data_files: dict[str, FilePath] | None = None
    window_length: Annotated[int, Field(ge=1, le=10_000)] | None = None
    window_stride: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    test_fraction: Annotated[float, Field(gt=0, le=0.5)] | None = None
    max_train_windows_per_user: PositiveInt | None = None
    max_test_windows: PositiveInt | None = None
    max_train_examples: PositiveInt | None = None
    max_test_examples: PositiveInt | None = None
    validation_fraction: Annotated[float, Field(gt=0, le=0.5)] | None = None
    partitioner: PartitionerName = "iid"
    alpha: PositiveFloat | None = None
    min_partition_size: Annotated[int, Field(ge=0)] | None = None
    classes_per_client: Annotated[int, Field(ge=1, le=100_000)] | None = None
    shards_per_client: Annotated[int, Field(ge=1, le=100_000)] | None = None
    shard_size: PositiveInt | None = None

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any) -> Any:
        """Defaults that depend on the data set: text windows, held-out share, Dirichlet minimum."""
        if not isinstance(data, dict) or data.get("dataset", DEFAULT_DATASET) not in available_datasets():
            return data
        info = dataset_info(data.get("dataset", DEFAULT_DATASET))
        filled = dict(data)
        if info.kind == "text":
            filled.setdefault("window-length", DEFAULT_WINDOW_LENGTH)
            if info.hub_id is None:
                filled.setdefault("window-stride", 1)
        if _holds_out(info, filled.get("data-files")):
            filled.setdefault("test-fraction", DEFAULT_TEST_FRACTION)
        if filled.get("partitioner") == "dirichlet":
            filled.setdefault("min-partition-size", 10)
        return filled

    @model_validator(mode="after")
    def _keys_match_choices(self) -> DataSection:
        """Every key belongs to the chosen data set and partitioner; all problems are listed at once."""
        info = dataset_info(self.dataset)
        given = {k for k, v in self.model_dump(by_alias=True).items() if v is not None}
        problems = []
        required, optional = _PARTITIONER_KEYS[self.partitioner]
        problems += [
            f"partitioner {self.partitioner!r} needs '{key}'" for key in required if key not in given
        ]
        for other, (req, opt) in _PARTITIONER_KEYS.items():
            problems += [
                f"'{key}' is only used by partitioner {other!r}, not {self.partitioner!r}"
                for key in (*req, *opt)
                if key in given and key not in (*required, *optional)
            ]
        if self.partitioner == "natural-id" and info.natural_user is None:
            problems.append(
                f"partitioner 'natural-id' needs natural users; {self.dataset!r} has none "
                "(kjv: books, femnist: writers, shakespeare: speaking roles)"
            )
        text_only = _TEXT_KEYS + (_WHOLE_TEXT_KEYS if info.hub_id is None else ())
        problems += [
            f"'{key}' does not apply to data set {self.dataset!r}"
            for key in (*_TEXT_KEYS, *_WHOLE_TEXT_KEYS)
            if key in given and (info.kind != "text" or key not in text_only)
        ]
        if self.test_fraction is not None and not _holds_out(info, self.data_files):
            problems.append(
                f"'test-fraction' does not apply: {self.dataset!r} has a test split"
                + (" (data-files.test)" if self.data_files else "")
            )
        if self.data_files is not None:
            if info.hub_id is None:
                problems.append(f"'data-files' is only for online data sets, not {self.dataset!r}")
            elif "train" not in self.data_files or not set(self.data_files) <= {"train", "test"}:
                problems.append(
                    'data-files takes a "train" file and optionally a "test" file, '
                    f'e.g. {{ train = "train.parquet" }}; got keys {sorted(self.data_files)}'
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self


class ModelSection(_Section):
    """``[model]``: the architecture clients train, and the CNN's activation."""

    name: ModelName = "cnn"
    activation: ModelActivation = "relu"


_REQUIRED_HINTS = {"proximal_mu": " (Li et al. 2020 tried 0.001 to 1; 0 would make it FedAvg)"}
"""What the error for a missing required strategy option adds, per option."""


class FederationSection(_Section):
    """``[federation]``: clients, rounds, sampling and local training."""

    num_clients: Annotated[int, Field(ge=1, le=100_000)] = 10
    rounds: Annotated[int, Field(ge=1, le=100_000)] = 5
    fraction_train: Annotated[float, Field(gt=0, le=1)] = 1.0
    cohort_sampling: Literal["fixed", "poisson"] = "fixed"
    strategy: StrategyName = "fedavg"
    server_learning_rate: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)] = 1.0
    server_momentum: Annotated[float, Field(ge=0, lt=1)] = 0.0
    # Flower's own option names; None: Flower's default for the chosen strategy
    proximal_mu: Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)] | None = None
    eta: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)] | None = None
    beta_1: Annotated[float, Field(ge=0, lt=1)] | None = None
    beta_2: Annotated[float, Field(ge=0, lt=1)] | None = None
    tau: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] | None = None
    beta: Annotated[float, Field(gt=0, lt=0.5)] | None = None
    num_malicious_nodes: Annotated[int, Field(ge=0, le=100_000)] | None = None
    local_epochs: Annotated[int, Field(ge=1, le=1000)] = 1
    local_steps: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    batch_size: Annotated[int, Field(ge=1, le=1_000_000)] = 64
    learning_rate: Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)] = 0.1
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.0
    round_timeout: Annotated[float, Field(gt=0, le=604_800, allow_inf_nan=False)] = 3600.0

    @model_validator(mode="after")
    def _options_match_strategy(self) -> FederationSection:
        """Options of another strategy (per the strategy registry), set away from their defaults, are errors.

        The error names the chosen strategy's own options. A strategy's required
        options (e.g. FedProx's ``proximal-mu``) must be set.
        """
        entry = get_strategy_entry(self.strategy)
        own = entry.options
        for option in entry.required:
            if getattr(self, option) is None:
                hint = _REQUIRED_HINTS.get(option, "")
                raise ValueError(f"strategy {self.strategy!r} needs '{kebab(option)}'{hint}")
        changed = {
            o
            for o in self._foreign_options() & self.model_fields_set
            if getattr(self, o) != self.model_fields[o].default
        }
        for option in sorted(changed):
            takers = " or ".join(
                repr(n) for n in available_strategies() if option in get_strategy_entry(n).options
            )
            allowed = ", ".join(f"'{kebab(o)}'" for o in own) or "none"
            raise ValueError(
                f"'{kebab(option)}' is an option of strategy {takers}, not of {self.strategy!r} (whose "
                f"options are: {allowed}); set strategy to one that takes it, or remove the key"
            )
        return self

    def _foreign_options(self) -> set[str]:
        """Options (field names) of the registered strategies that the chosen one does not take."""
        every = {o for name in available_strategies() for o in get_strategy_entry(name).options}
        return every - set(get_strategy_entry(self.strategy).options)

    def applicable(self, dumped: dict[str, Any]) -> dict[str, Any]:
        """``dumped`` (this section with kebab-case keys) without the options of other strategies."""
        foreign = {kebab(o) for o in self._foreign_options()}
        return {k: v for k, v in dumped.items() if k not in foreign}

    def strategy_options(self) -> tuple[tuple[str, float], ...]:
        """The chosen strategy's options (names from its registry entry) with their values, sorted.

        Options left unset (None) are left out: Flower's default for the strategy applies
        (e.g. FedAdam's ``eta`` 0.1, FedYogi's 0.01).
        """
        options = get_strategy_entry(self.strategy).options
        return tuple(sorted((o, getattr(self, o)) for o in options if getattr(self, o) is not None))


class EvaluationSection(_Section):
    """``[evaluation]``: how the server tests the global model (:class:`fedsim.client.EvaluationSpec`)."""

    round_examples: Annotated[int, Field(ge=1, le=100_000_000)] | None = None


class AuditSection(_Section):
    """``[audit]``: the membership-inference audit of the final global model (see :mod:`fedsim.audit`)."""

    enabled: bool = True
    shadow_models: Annotated[int, Field(ge=0, le=64)] = 0
    max_examples: Annotated[int, Field(ge=20, le=1_000_000)] = 1000
    confidence: Annotated[float, Field(gt=0.5, lt=1)] = 0.95
    shadow_epochs: Annotated[int, Field(ge=1, le=10_000)] | None = None
    canaries: Annotated[int, Field(ge=0, le=100_000)] = 0
    canary_norm: Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)] | None = None
    input_canaries: Annotated[int, Field(ge=0, le=100_000)] = 0

    @model_validator(mode="after")
    def _lira_needs_four(self) -> AuditSection:
        """LiRA estimates IN and OUT statistics per example: at least 2 shadow models of each."""
        if self.shadow_models and (self.shadow_models < 4 or self.shadow_models % 2):
            raise ValueError("'shadow-models' must be 0 (the loss attack only) or an even number ≥ 4")
        for key, value in (("canaries", self.canaries), ("input-canaries", self.input_canaries)):
            if value == 1:
                raise ValueError(f"'{key}' must be 0 (none) or at least 2 (1,000 is typical)")
            if value and not self.enabled:
                raise ValueError(f"'{key}' needs enabled = true (the canary audit is part of the audit)")
        return self


class FaultsSection(_Section):
    """``[faults]``: client failures injected on purpose (see :mod:`fedsim.simulation.faults`)."""

    rate: Annotated[float, Field(ge=0, le=1)] = 0.0
    kind: Literal["exception", "hang", "crash"] = "exception"
    hang_s: Annotated[float, Field(gt=0, le=604_800, allow_inf_nan=False)] | None = None


class ResourcesSection(_Section):
    """``[resources]``: what each simulated client may use, and where Ray runs."""

    client_cpus: Annotated[float, Field(gt=0, le=1024)] = 1.0
    client_gpus: Annotated[float, Field(ge=0, le=64)] = 0.0
    ray_address: str = "local"
