"""The sections of a scenario file (``[data]``, ``[model]``, ...) as pydantic models.

Every key, its type, range and default is defined here (and the top-level keys
in :class:`fedsim.simulation.scenario.Scenario`); nothing else holds defaults.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fedsim.data import available_datasets, dataset_info


class ScenarioError(ValueError):
    """A scenario file that cannot be read or is invalid; the message names the file and key."""


def _kebab(name: str) -> str:
    return name.replace("_", "-")


class _Section(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=_kebab, populate_by_name=False, strict=True
    )


PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]


DatasetName = Literal["fashion-mnist", "digits", "kjv", "mnist", "femnist", "cifar10", "shakespeare"]
PartitionerName = Literal["iid", "dirichlet", "pathological", "shard", "natural-id"]

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

    dataset: DatasetName = "fashion-mnist"
    data_files: dict[str, FilePath] | None = None
    window_length: Annotated[int, Field(ge=1, le=10_000)] | None = None
    window_stride: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    test_fraction: Annotated[float, Field(gt=0, le=0.5)] | None = None
    max_train_windows_per_user: PositiveInt | None = None
    max_test_windows: PositiveInt | None = None
    max_train_examples: PositiveInt | None = None
    max_test_examples: PositiveInt | None = None
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
        if not isinstance(data, dict) or data.get("dataset", "fashion-mnist") not in available_datasets():
            return data
        info = dataset_info(data.get("dataset", "fashion-mnist"))
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
    """``[model]``: the architecture clients train."""

    name: Literal["cnn", "lstm"] = "cnn"


class FederationSection(_Section):
    """``[federation]``: clients, rounds, sampling and local training."""

    num_clients: Annotated[int, Field(ge=1, le=100_000)] = 10
    rounds: Annotated[int, Field(ge=1, le=100_000)] = 5
    fraction_train: Annotated[float, Field(gt=0, le=1)] = 1.0
    strategy: Literal["fedavg", "fedavgm"] = "fedavg"
    server_learning_rate: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)] = 1.0
    server_momentum: Annotated[float, Field(ge=0, lt=1)] = 0.0
    local_epochs: Annotated[int, Field(ge=1, le=1000)] = 1
    local_steps: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    batch_size: Annotated[int, Field(ge=1, le=1_000_000)] = 64
    learning_rate: Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)] = 0.1
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.0
    round_timeout: Annotated[float, Field(gt=0, le=604_800, allow_inf_nan=False)] = 3600.0

    @model_validator(mode="after")
    def _server_optimiser_needs_fedavgm(self) -> FederationSection:
        if self.strategy != "fedavgm" and (self.server_momentum != 0 or self.server_learning_rate != 1):
            raise ValueError("'server-momentum' and 'server-learning-rate' need strategy = \"fedavgm\"")
        return self


DEFAULT_TARGET_EPSILON = 3.0
"""Target ε when a sample-level DP scenario names neither target-epsilon, noise-multiplier nor tiers."""

_SAMPLE_KEYS = (
    "target-epsilon",
    "noise-multiplier",
    "grad-sample-mode",
    "secure-mode",
    "tiers",
    "calibrate-for",
    "min-clients",
    "when-too-few",
)
_USER_KEYS = ("user-noise-multiplier", "user-target-epsilon", "clipping", "clip-on", "clipping-norm")
_ADAPTIVE_KEYS = ("target-clipped-quantile", "clip-norm-lr", "clipped-count-stddev")


class TierSection(_Section):
    """One ``[[privacy.tiers]]`` entry: a share of the clients and their ε budget."""

    share: Annotated[float, Field(gt=0, le=1)]
    target_epsilon: PositiveFloat
    name: Annotated[str, Field(min_length=1, max_length=40)] | None = None


class PrivacySection(_Section):
    """``[privacy]``: the privacy mode, sample-level DP-SGD, budgets, user-level DP-FedAvg, SecAgg+.

    See :class:`fedsim.privacy.PrivacyBudget` and :class:`fedsim.privacy.UserLevelDP`.
    """

    mode: Literal["none", "sample", "user", "both"] = "sample"
    accountant: Literal["rdp", "prv"] = "rdp"
    target_delta: Annotated[float, Field(gt=0, lt=1)] = 1e-5
    # sample-level DP-SGD (Opacus)
    target_epsilon: PositiveFloat | None = None
    noise_multiplier: Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)] | None = None
    max_grad_norm: PositiveFloat = 1.0
    grad_sample_mode: Literal["ghost", "hooks", "functorch"] = "ghost"
    secure_mode: bool = False
    tiers: Annotated[list[TierSection], Field(min_length=1, max_length=100)] | None = None
    calibrate_for: Literal["all-rounds", "expected-rounds"] = "all-rounds"
    min_clients: Annotated[int, Field(ge=1, le=100_000)] = 1
    when_too_few: Literal["stop", "continue"] = "stop"
    # user-level DP-FedAvg (Flower)
    user_noise_multiplier: Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)] | None = None
    user_target_epsilon: PositiveFloat | None = None
    clipping: Literal["fixed", "adaptive"] = "fixed"
    clip_on: Literal["server", "client"] = "server"
    clipping_norm: PositiveFloat = 1.0
    target_clipped_quantile: Annotated[float, Field(ge=0, le=1)] = 0.5
    clip_norm_lr: PositiveFloat = 0.2
    clipped_count_stddev: PositiveFloat | None = None
    # secure aggregation (Flower SecAgg+)
    secure_aggregation: bool = False

    def applicable(self, dumped: dict[str, Any]) -> dict[str, Any]:
        """``dumped`` (this section with kebab-case keys) without the keys its mode does not use."""
        sample = self.mode in ("sample", "both")
        user = self.mode in ("user", "both")
        unused = set()
        if not sample:
            unused |= {*_SAMPLE_KEYS, "max-grad-norm"}
        if not user:
            unused |= {*_USER_KEYS, *_ADAPTIVE_KEYS}
        elif self.clipping == "fixed":
            unused |= set(_ADAPTIVE_KEYS)
        if self.noise_multiplier is not None:
            unused.add("calibrate-for")
        return {k: v for k, v in dumped.items() if k not in unused}

    @model_validator(mode="before")
    @classmethod
    def _default_epsilon(cls, data: Any) -> Any:
        """Without target-epsilon, noise-multiplier or tiers, sample-level DP targets ε = 3."""
        if (
            isinstance(data, dict)
            and data.get("mode", "sample") in ("sample", "both")
            and not {"target-epsilon", "noise-multiplier", "tiers"} & set(data)
        ):
            return {**data, "target-epsilon": DEFAULT_TARGET_EPSILON}
        return data

    @model_validator(mode="after")
    def _keys_match_mode(self) -> PrivacySection:
        """Every key belongs to the chosen mode; all problems are listed at once."""
        given = {_kebab(name) for name in self.model_fields_set}
        sample = self.mode in ("sample", "both")
        user = self.mode in ("user", "both")
        problems = [
            f"'{key}' is only used with mode 'sample' or 'both', not {self.mode!r}"
            for key in _SAMPLE_KEYS
            if key in given and not sample
        ]
        if not sample and "max-grad-norm" in given:
            problems.append(f"'max-grad-norm' is only used with mode 'sample' or 'both', not {self.mode!r}")
        problems += [
            f"'{key}' is only used with mode 'user' or 'both', not {self.mode!r}"
            for key in (*_USER_KEYS, *_ADAPTIVE_KEYS)
            if key in given and not user
        ]
        if user and self.clipping == "fixed":
            problems += [
                f"'{key}' is only used with clipping = \"adaptive\"" for key in _ADAPTIVE_KEYS if key in given
            ]
        if user and self.user_noise_multiplier is None and self.user_target_epsilon is None:
            problems.append(f"mode {self.mode!r} needs 'user-noise-multiplier' or 'user-target-epsilon'")
        if self.tiers and self.target_epsilon is not None:
            problems.append(
                "give either 'target-epsilon' (one budget) or 'tiers' (budgets per tier), not both"
            )
        names = [t.name for t in self.tiers or () if t.name]
        if len(names) != len(set(names)):
            problems.append(f"tiers: names must differ, got {names}")
        if self.tiers and abs(sum(t.share for t in self.tiers) - 1) > 1e-6:
            shares = " + ".join(f"{t.share:g}" for t in self.tiers)
            problems.append(
                f"tiers: the shares must add up to 1, got {shares} = {sum(t.share for t in self.tiers):g}"
            )
        if self.calibrate_for == "expected-rounds" and self.noise_multiplier is not None:
            problems.append(
                "'calibrate-for' calibrates the noise; it does not apply with a fixed 'noise-multiplier'"
            )
        if self.secure_aggregation and user and self.clip_on == "server":
            problems.append(
                "secure-aggregation hides each client's update from the server, which then cannot clip it: "
                'set clip-on = "client"'
            )
        if self.secure_aggregation and user and self.clipping == "adaptive":
            problems.append(
                'secure-aggregation supports user-level DP with clipping = "fixed" only '
                "(Flower's adaptive clipping counts clipped updates in the clear)"
            )
        if self.secure_mode and sample:
            from fedsim.privacy import check_secure_mode

            try:
                check_secure_mode()
            except ImportError as err:
                problems.append(str(err))
        if problems:
            raise ValueError("; ".join(problems))
        return self


class AuditSection(_Section):
    """``[audit]``: the membership-inference audit of the final global model (see :mod:`fedsim.audit`)."""

    enabled: bool = True
    shadow_models: Annotated[int, Field(ge=0, le=64)] = 0
    max_examples: Annotated[int, Field(ge=20, le=1_000_000)] = 1000
    confidence: Annotated[float, Field(gt=0.5, lt=1)] = 0.95
    shadow_epochs: Annotated[int, Field(ge=1, le=10_000)] | None = None

    @model_validator(mode="after")
    def _lira_needs_four(self) -> AuditSection:
        """LiRA estimates IN and OUT statistics per example: at least 2 shadow models of each."""
        if self.shadow_models and (self.shadow_models < 4 or self.shadow_models % 2):
            raise ValueError("'shadow-models' must be 0 (the loss attack only) or an even number ≥ 4")
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
