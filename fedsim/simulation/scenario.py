"""Scenario files: one validated pydantic model, parsed once.

A scenario is a TOML file with kebab-case keys (as Flower's run config uses).
:func:`load_scenario` reads it, applies ``--set`` overrides, validates it
against :class:`Scenario` (unknown keys, wrong types and out-of-range values
are errors) and returns it. :meth:`Scenario.specs` turns it into the frozen
dataclasses each layer takes; nothing below reads TOML keys. The defaults of
every key live here and nowhere else.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fedsim.client import TrainSpec
from fedsim.data import DataSpec
from fedsim.models import ModelSpec
from fedsim.partition import PartitionSpec
from fedsim.privacy import PrivacyBudget
from fedsim.simulation.federation import FederationSpec


class ScenarioError(ValueError):
    """A scenario file that cannot be read or is invalid; the message names the file and key."""


def _kebab(name: str) -> str:
    return name.replace("_", "-")


class _Section(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=_kebab, populate_by_name=False, strict=True
    )


PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class DataSection(_Section):
    """``[data]``: the data set and how it is split among clients."""

    dataset: Literal["fashion-mnist", "digits"] = "fashion-mnist"
    partitioner: Literal["iid", "dirichlet"] = "iid"
    alpha: PositiveFloat | None = None
    min_partition_size: Annotated[int, Field(ge=0)] = 10

    @model_validator(mode="after")
    def _alpha_matches_partitioner(self) -> DataSection:
        if self.partitioner == "dirichlet" and self.alpha is None:
            raise ValueError("partitioner 'dirichlet' needs 'alpha' (a number > 0, e.g. 0.5)")
        if self.partitioner != "dirichlet" and self.alpha is not None:
            raise ValueError(f"'alpha' is only used by partitioner 'dirichlet', not {self.partitioner!r}")
        return self


class ModelSection(_Section):
    """``[model]``: the architecture clients train."""

    name: Literal["cnn"] = "cnn"


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

    @model_validator(mode="after")
    def _server_optimiser_needs_fedavgm(self) -> FederationSection:
        if self.strategy != "fedavgm" and (self.server_momentum != 0 or self.server_learning_rate != 1):
            raise ValueError("'server-momentum' and 'server-learning-rate' need strategy = \"fedavgm\"")
        return self


DEFAULT_TARGET_EPSILON = 3.0
"""Target ε when a sample-level DP scenario names neither target-epsilon nor noise-multiplier."""


class PrivacySection(_Section):
    """``[privacy]``: sample-level DP-SGD settings (see :class:`fedsim.privacy.PrivacyBudget`)."""

    mode: Literal["none", "sample"] = "sample"
    target_epsilon: PositiveFloat | None = None
    target_delta: Annotated[float, Field(gt=0, lt=1)] = 1e-5
    noise_multiplier: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    max_grad_norm: PositiveFloat = 1.0
    accountant: Literal["rdp", "prv"] = "rdp"
    grad_sample_mode: Literal["ghost", "hooks", "functorch"] = "ghost"

    @model_validator(mode="before")
    @classmethod
    def _default_epsilon(cls, data: Any) -> Any:
        """Without either noise setting, sample-level DP targets ε = DEFAULT_TARGET_EPSILON."""
        if (
            isinstance(data, dict)
            and data.get("mode", "sample") == "sample"
            and "target-epsilon" not in data
            and "noise-multiplier" not in data
        ):
            return {**data, "target-epsilon": DEFAULT_TARGET_EPSILON}
        return data

    @model_validator(mode="after")
    def _two_of_epsilon_delta_sigma(self) -> PrivacySection:
        if self.mode == "sample" and (self.target_epsilon is None) == (self.noise_multiplier is None):
            raise ValueError(
                "mode 'sample' takes 'target-epsilon' (calibrate the noise) or "
                "'noise-multiplier' (fixed noise), not both"
            )
        return self


class ResourcesSection(_Section):
    """``[resources]``: what each simulated client may use, and where Ray runs."""

    client_cpus: Annotated[float, Field(gt=0, le=1024)] = 1.0
    client_gpus: Annotated[float, Field(ge=0, le=64)] = 0.0
    ray_address: str = "local"


class Scenario(_Section):
    """A whole scenario file. Every key and its default is defined here."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0
    data: DataSection = DataSection()
    model: ModelSection = ModelSection()
    federation: FederationSection = FederationSection()
    privacy: PrivacySection = PrivacySection.model_validate({})
    resources: ResourcesSection = ResourcesSection()

    def specs(self) -> ScenarioSpecs:
        """Convert to the frozen dataclasses each layer takes."""
        f, p, r = self.federation, self.privacy, self.resources
        return ScenarioSpecs(
            name=self.name,
            seed=self.seed,
            data=DataSpec(dataset=self.data.dataset),
            partition=PartitionSpec(
                name=self.data.partitioner,
                num_partitions=f.num_clients,
                seed=self.seed,
                alpha=self.data.alpha,
                min_partition_size=self.data.min_partition_size,
            ),
            model=ModelSpec(name=self.model.name),
            train=TrainSpec(
                local_epochs=f.local_epochs,
                batch_size=f.batch_size,
                learning_rate=f.learning_rate,
                momentum=f.momentum,
                local_steps=f.local_steps,
            ),
            privacy=PrivacyBudget(
                mode=p.mode,
                target_epsilon=p.target_epsilon,
                target_delta=p.target_delta,
                noise_multiplier=p.noise_multiplier,
                max_grad_norm=p.max_grad_norm,
                accountant=p.accountant,
                grad_sample_mode=p.grad_sample_mode,
            ),
            federation=FederationSpec(
                num_clients=f.num_clients,
                rounds=f.rounds,
                fraction_train=f.fraction_train,
                strategy=f.strategy,
                server_learning_rate=f.server_learning_rate,
                server_momentum=f.server_momentum,
                client_cpus=r.client_cpus,
                client_gpus=r.client_gpus,
                ray_address=r.ray_address,
            ),
        )

    def to_toml_dict(self) -> dict[str, Any]:
        """The fully resolved scenario (defaults filled in) with kebab-case keys."""
        return self.model_dump(by_alias=True, exclude_none=True)


@dataclass(frozen=True)
class ScenarioSpecs:
    """The scenario as the frozen per-layer specs (no defaults, no TOML keys)."""

    name: str
    seed: int
    data: DataSpec
    partition: PartitionSpec
    model: ModelSpec
    train: TrainSpec
    privacy: PrivacyBudget
    federation: FederationSpec


def _parse_value(text: str) -> Any:
    """Parse a ``--set`` value as a TOML value; bare words are strings."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``KEY=VALUE`` overrides (dotted kebab-case keys) to a parsed TOML dict.

    Raises:
        ScenarioError: if an override is not ``KEY=VALUE`` or walks into a non-table.

    Example:
        >>> apply_overrides({"federation": {"rounds": 5}}, ["federation.rounds=2", "seed=3"])
        {'federation': {'rounds': 2}, 'seed': 3}
    """
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ScenarioError(f"--set {item!r}: expected KEY=VALUE, e.g. federation.rounds=2")
        *tables, leaf = key.strip().split(".")
        node = out
        for table in tables:
            child = node.setdefault(table, {})
            if not isinstance(child, dict):
                raise ScenarioError(f"--set {item!r}: {table!r} is not a table")
            node[table] = child = dict(child)
            node = child
        parsed = _parse_value(value.strip())
        if isinstance(parsed, dict) or isinstance(node.get(leaf), dict):
            raise ScenarioError(
                f"--set {item!r}: sets one key, not a whole table; write e.g. {leaf}.rounds=2"
            )
        node[leaf] = parsed
    return out


def _describe(error: dict[str, Any], model: type[BaseModel]) -> str:
    """One line for one pydantic error: the dotted key, what is wrong, what is allowed."""
    loc = [str(part) for part in error["loc"]]
    key = ".".join(loc) if loc else "(file)"
    kind = error["type"]
    if kind == "extra_forbidden":
        section: type[BaseModel] | None = model
        for part in loc[:-1]:
            field = (
                next((f for n, f in section.model_fields.items() if _kebab(n) == part), None)
                if section
                else None
            )
            annotation = field.annotation if field else None
            section = (
                annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
            )
        allowed = sorted(_kebab(n) for n in section.model_fields) if section else []
        return f"{key}: unknown key; allowed keys here: {', '.join(allowed)}"
    if kind == "missing":
        return f"{key}: required key is missing"
    got = error.get("input")
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"{key}: must be a table ([{key}]), got {got!r}"
    return f"{key}: {message} (got {got!r})"


def validate_scenario(raw: dict[str, Any], *, source: str) -> Scenario:
    """Validate a parsed scenario dict.

    Args:
        raw: parsed TOML (kebab-case keys).
        source: file name used in error messages.

    Raises:
        ScenarioError: listing every invalid key, one per line, each prefixed by
            ``source``.
    """
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as err:
        lines = [f"{source}: {_describe(e, Scenario)}" for e in err.errors()]
        raise ScenarioError("\n".join(lines)) from None
    return scenario


def load_scenario(path: str | Path, overrides: list[str] | None = None) -> Scenario:
    """Read, override and validate a scenario file.

    Args:
        path: a TOML file.
        overrides: ``KEY=VALUE`` strings, e.g. ``["federation.rounds=2"]``.

    Raises:
        ScenarioError: if the file is missing, unreadable, not UTF-8, not TOML, or
            invalid; the message names the file and the key.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")  # a leading byte-order mark is tolerated
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such scenario file") from None
    except IsADirectoryError:
        raise ScenarioError(f"{path}: is a directory, not a scenario file") from None
    except UnicodeDecodeError as err:
        raise ScenarioError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise ScenarioError(f"{path}: cannot read ({err.strerror})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(f"{path}: not valid TOML: {err}") from None
    if not raw:
        raise ScenarioError(f"{path}: empty scenario; at least 'name' is required")
    source = f"{path} (with --set {' '.join(overrides)})" if overrides else str(path)
    return validate_scenario(apply_overrides(raw, overrides or []), source=source)
