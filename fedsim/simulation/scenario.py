"""Scenario files: one validated pydantic model, parsed once.

A scenario is a TOML file with kebab-case keys (as Flower's run config uses).
:func:`load_scenario` reads it, applies ``--set`` overrides, validates it
against :class:`Scenario` (unknown keys, wrong types and out-of-range values
are errors) and returns it. :meth:`Scenario.specs` turns it into the frozen
dataclasses each layer takes; nothing below reads TOML keys. The defaults of
every key live in the schema (here and in :mod:`fedsim.simulation.sections`)
and nowhere else.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, get_args

from pydantic import BaseModel, Field, ValidationError, model_validator

from fedsim.audit import AuditSpec
from fedsim.client import TrainSpec
from fedsim.data import DataSpec, dataset_info
from fedsim.models import MODEL_INPUTS, ModelSpec
from fedsim.partition import PartitionSpec
from fedsim.privacy import BudgetTier, PrivacyBudget, UserLevelDP
from fedsim.simulation.faults import FaultSpec
from fedsim.simulation.federation import FederationSpec
from fedsim.simulation.sections import (
    AuditSection,
    DataSection,
    FaultsSection,
    FederationSection,
    ModelSection,
    PrivacySection,
    ResourcesSection,
    ScenarioError,
    _kebab,
    _Section,
)

HANG_MARGIN_S = 1.0
"""Default ``faults.hang-s`` beyond the round timeout: a hung client holds its Ray actor (its CPU
slot) while it hangs, as a stalled device would, so a longer hang also delays the next round."""


class Scenario(_Section):
    """A whole scenario file. Every key and its default is defined here."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0
    data: DataSection = DataSection()
    model: ModelSection = ModelSection()
    federation: FederationSection = FederationSection()
    privacy: PrivacySection = PrivacySection.model_validate({})
    resources: ResourcesSection = ResourcesSection()
    audit: AuditSection = AuditSection()
    faults: FaultsSection = FaultsSection()

    @model_validator(mode="after")
    def _model_reads_data(self) -> Scenario:
        kind = dataset_info(self.data.dataset).kind
        if kind not in MODEL_INPUTS[self.model.name]:
            readers = sorted(m for m, kinds in MODEL_INPUTS.items() if kind in kinds)
            raise ValueError(
                f"model.name: {self.model.name!r} cannot read {kind} data ({self.data.dataset!r}); "
                f"use one of {readers}"
            )
        return self

    @model_validator(mode="after")
    def _privacy_fits_federation(self) -> Scenario:
        """``min-clients`` and every budget tier must fit in the federation."""
        p, n = self.privacy, self.federation.num_clients
        problems = []
        if p.mode in ("sample", "both") and p.min_clients > n:
            problems.append(
                f"privacy.min-clients = {p.min_clients} is more than federation.num-clients = {n}"
            )
        if p.tiers and p.mode in ("sample", "both"):
            from fedsim.privacy import BudgetTier, assign_tiers

            tiers = tuple(BudgetTier(t.share, t.target_epsilon) for t in p.tiers)
            counts = [assign_tiers(n, tiers, seed=self.seed).count(i) for i in range(len(tiers))]
            problems += [
                f"privacy.tiers.{i}: share {t.share:g} of {n} clients is no client; raise its share or "
                "federation.num-clients"
                for i, (t, c) in enumerate(zip(p.tiers, counts, strict=True))
                if c == 0
            ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _hang_outlasts_the_round(self) -> Scenario:
        """A ``hang`` fault must sleep past ``federation.round-timeout`` (default: 1 s past it).

        SecAgg+ runs take neither (Flower's legacy workflow runs them).
        """
        f = self.faults
        if f.kind == "hang" and f.hang_s is not None and f.hang_s <= self.federation.round_timeout:
            raise ValueError(
                f"faults.hang-s = {f.hang_s:g} must be longer than federation.round-timeout = "
                f"{self.federation.round_timeout:g} (a hang is a client that misses the round)"
            )
        if f.kind != "hang" and f.hang_s is not None:
            raise ValueError('faults.hang-s only applies to kind = "hang"')
        if self.privacy.secure_aggregation and (
            f.rate > 0 or "round_timeout" in self.federation.model_fields_set
        ):
            raise ValueError(
                "[faults] and federation.round-timeout do not apply to privacy.secure-aggregation runs "
                "(Flower's SecAgg+ workflow has its own timeouts); remove them"
            )
        return self

    @model_validator(mode="after")
    def _user_level_needs_fedavg(self) -> Scenario:
        """Flower's DP-FedAvg wrappers noise the strategy's output; FedAvgM's output is not a plain mean."""
        if self.privacy.mode in ("user", "both") and self.federation.strategy != "fedavg":
            raise ValueError(
                f'privacy.mode {self.privacy.mode!r} needs federation.strategy = "fedavg": Flower\'s '
                "user-level DP wrappers add the noise after the strategy, and FedAvgM's momentum would carry "
                "earlier rounds' un-noised averages into later models"
            )
        return self

    def specs(self) -> ScenarioSpecs:
        """Convert to the frozen dataclasses each layer takes."""
        d, f, p, r = self.data, self.federation, self.privacy, self.resources
        return ScenarioSpecs(
            name=self.name,
            seed=self.seed,
            data=DataSpec(
                dataset=d.dataset,
                data_files=tuple(sorted(d.data_files.items())) if d.data_files else None,
                window_length=d.window_length,
                window_stride=d.window_stride or 1,
                test_fraction=d.test_fraction,
                max_train_windows_per_user=d.max_train_windows_per_user,
                max_test_windows=d.max_test_windows,
                max_train_examples=d.max_train_examples,
                max_test_examples=d.max_test_examples,
            ),
            partition=PartitionSpec(
                name=d.partitioner,
                num_partitions=f.num_clients,
                seed=self.seed,
                alpha=d.alpha,
                min_partition_size=d.min_partition_size if d.min_partition_size is not None else 0,
                classes_per_client=d.classes_per_client,
                shards_per_client=d.shards_per_client,
                shard_size=d.shard_size,
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
                secure_mode=p.secure_mode,
                tiers=tuple(
                    BudgetTier(share=t.share, target_epsilon=t.target_epsilon, name=t.name or "")
                    for t in p.tiers or ()
                ),
                calibrate_for=p.calibrate_for,
                min_clients=p.min_clients,
                when_too_few=p.when_too_few,
                user_level=(
                    UserLevelDP(
                        noise_multiplier=p.user_noise_multiplier,
                        target_epsilon=p.user_target_epsilon,
                        clipping=p.clipping,
                        clip_on=p.clip_on,
                        clipping_norm=p.clipping_norm,
                        target_clipped_quantile=p.target_clipped_quantile,
                        clip_norm_lr=p.clip_norm_lr,
                        clipped_count_stddev=p.clipped_count_stddev,
                    )
                    if p.mode in ("user", "both")
                    else None
                ),
                secure_aggregation=p.secure_aggregation,
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
                round_timeout=f.round_timeout,
            ),
            audit=AuditSpec(
                enabled=self.audit.enabled,
                max_examples=self.audit.max_examples,
                confidence=self.audit.confidence,
                shadow_models=self.audit.shadow_models,
                shadow_epochs=self.audit.shadow_epochs,
                seed=self.seed,
            ),
            faults=FaultSpec(
                rate=self.faults.rate,
                kind=self.faults.kind,
                hang_s=self.faults.hang_s or f.round_timeout + HANG_MARGIN_S,
                seed=self.seed,
            ),
        )

    def to_toml_dict(self) -> dict[str, Any]:
        """The fully resolved scenario (defaults filled in) with kebab-case keys.

        Keys the privacy mode does not use are left out, so the result is itself
        a valid scenario (a run's ``scenario.toml`` can be run again).
        """
        raw = self.model_dump(by_alias=True, exclude_none=True)
        raw["privacy"] = self.privacy.applicable(raw["privacy"])
        return raw


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
    audit: AuditSpec
    faults: FaultSpec = FaultSpec()


MAX_SCENARIO_BYTES = 1_000_000
"""Largest scenario file read (a scenario or sweep file is a few kilobytes)."""


def _parse_value(text: str) -> Any:
    """Parse a ``--set`` value as a TOML value; bare words are strings."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):  # RecursionError: arrays nested too deeply
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
                f"--set {item!r}: sets one key, not a whole table; set the keys inside it "
                f"one at a time, e.g. --set {key.strip()}.KEY=VALUE"
            )
        node[leaf] = parsed
    return out


def _table_model(annotation: Any) -> type[BaseModel] | None:
    """The section model a field holds: itself, or the one inside ``list[...]`` / ``... | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _table_model(arg)
        if found is not None:
            return found
    return None


def _clip(text: str, limit: int = 200) -> str:
    """``text``, or its first ``limit`` characters and its length, so an error line stays short."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _describe(error: dict[str, Any], model: type[BaseModel]) -> str:
    """One line for one pydantic error: the dotted key, what is wrong, what is allowed.

    A key with a control character (a newline, NUL) is quoted, and long keys and
    values are clipped, so the line stays one short line.
    """
    loc = [str(part) if str(part).isprintable() else repr(str(part)) for part in error["loc"]]
    key = _clip(".".join(loc)) if loc else "(file)"
    kind = error["type"]
    if kind == "extra_forbidden":
        section: type[BaseModel] | None = model
        for part in loc[:-1]:
            field = (
                next((f for n, f in section.model_fields.items() if _kebab(n) == part), None)
                if section
                else None
            )
            if part.isdigit() and section is not None:  # an item of a list of tables
                continue
            annotation = field.annotation if field else None
            section = _table_model(annotation)
        allowed = sorted(_kebab(n) for n in section.model_fields) if section else []
        return f"{key}: unknown key; allowed keys here: {', '.join(allowed)}"
    if kind == "missing":
        return f"{key}: required key is missing"
    got = error.get("input")
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if not loc:  # a rule across sections; the message names the keys
        return message
    if isinstance(got, dict):  # a rule across keys of one table; the message names them
        return f"{key}: {message}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"{key}: must be a table ([{key}]), got {_clip(repr(got))}"
    return f"{key}: {message} (got {_clip(repr(got))})"


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


def read_scenario_file(path: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """Read a scenario file as a dict and apply ``--set`` overrides (nothing validated yet).

    Args:
        path: a TOML file.
        overrides: ``KEY=VALUE`` strings, e.g. ``["federation.rounds=2"]``.
            Relative ``data.data-files`` paths are taken relative to the file's folder.

    Raises:
        ScenarioError: if the file is missing, unreadable, larger than
            :data:`MAX_SCENARIO_BYTES`, not UTF-8, not TOML or empty; the message
            names the file.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_SCENARIO_BYTES + 1)  # bounded: the path may be /dev/zero
        text = data.decode("utf-8-sig")  # a leading byte-order mark is tolerated
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such scenario file") from None
    except IsADirectoryError:
        raise ScenarioError(f"{path}: is a directory, not a scenario file") from None
    except UnicodeDecodeError as err:
        raise ScenarioError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise ScenarioError(f"{path}: cannot read ({err.strerror})") from None
    if len(data) > MAX_SCENARIO_BYTES:
        raise ScenarioError(f"{path}: larger than {MAX_SCENARIO_BYTES} bytes; a scenario is a short file")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(f"{path}: not valid TOML: {err}") from None
    except RecursionError:
        raise ScenarioError(f"{path}: arrays or inline tables nested too deeply to read") from None
    if not raw:
        raise ScenarioError(f"{path}: empty scenario; at least 'name' is required")
    return resolve_data_files(apply_overrides(raw, overrides or []), path.parent)


def source_name(path: str | Path, overrides: list[str] | None = None) -> str:
    """How error messages name a scenario file and its ``--set`` overrides."""
    return f"{path} (with --set {' '.join(overrides)})" if overrides else str(path)


def load_scenario(path: str | Path, overrides: list[str] | None = None) -> Scenario:
    """Read, override and validate a scenario file.

    Args:
        path: a TOML file (without a ``[sweep]`` table: see :mod:`fedsim.simulation.grid`).
        overrides: ``KEY=VALUE`` strings, e.g. ``["federation.rounds=2"]``.
            Relative ``data.data-files`` paths are taken relative to the file's folder.

    Raises:
        ScenarioError: if the file is missing, unreadable, not UTF-8, not TOML, or
            invalid; the message names the file and the key.
    """
    raw = read_scenario_file(path, overrides)
    return validate_scenario(raw, source=source_name(path, overrides))


def resolve_data_files(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    """Make relative ``data.data-files`` paths absolute, relative to the scenario file's folder."""
    data = raw.get("data")
    files = data.get("data-files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return raw
    resolved = {
        split: str((base / p).resolve()) if isinstance(p, str) and p and not Path(p).is_absolute() else p
        for split, p in files.items()
    }
    return {**raw, "data": {**data, "data-files": resolved}}
