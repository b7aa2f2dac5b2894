"""The scenario schema: one pydantic model of a whole scenario file, with every key's default.

A scenario is a TOML file with kebab-case keys (as Flower's run config uses).
:mod:`fedsim.scenario.reading` reads it and validates it against
:class:`Scenario` (unknown keys, wrong types and out-of-range values are
errors); :func:`fedsim.scenario.specs.build_run_spec` turns it into the frozen
specs each layer takes, and nothing below reads TOML keys. The defaults of
every key live in the schema (here, in :mod:`fedsim.scenario.sections` and
in :mod:`fedsim.scenario.privacy_section`) and nowhere else.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator

from fedsim.aggregation.legacy import legacy_strategies
from fedsim.aggregation.registry import available_strategies, get_strategy_entry
from fedsim.data import dataset_info
from fedsim.models import MODEL_INPUTS
from fedsim.scenario.privacy_section import PrivacySection
from fedsim.scenario.sections import (
    AuditSection,
    DataSection,
    EvaluationSection,
    FaultsSection,
    FederationSection,
    ModelSection,
    ResourcesSection,
    _Section,
)
from fedsim.scenario.tracking_section import TrackingSection

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
    evaluation: EvaluationSection = EvaluationSection()
    audit: AuditSection = AuditSection()
    faults: FaultsSection = FaultsSection()
    tracking: TrackingSection = TrackingSection()

    @model_validator(mode="after")
    def _model_reads_data(self) -> Scenario:
        kind = dataset_info(self.data.dataset).kind
        if kind not in MODEL_INPUTS[self.model.name]:
            readers = sorted(m for m, kinds in MODEL_INPUTS.items() if kind in kinds)
            raise ValueError(
                f"model.name: {self.model.name!r} cannot read {kind} data ({self.data.dataset!r}); "
                f"use one of {readers}"
            )
        if self.model.activation != "relu" and self.model.name != "cnn":
            raise ValueError(
                f"model.activation: {self.model.activation!r} applies to model.name = 'cnn' only "
                f"(the {self.model.name}'s activations are fixed); remove it"
            )
        return self

    @model_validator(mode="after")
    def _privacy_fits_federation(self) -> Scenario:
        """``min-clients`` and every budget tier must fit in the federation."""
        p, n = self.privacy, self.federation.num_clients
        problems = []
        if p.is_sample_level and p.min_clients > n:
            problems.append(
                f"privacy.min-clients = {p.min_clients} is more than federation.num-clients = {n}"
            )
        if p.tiers and p.is_sample_level:
            from fedsim.privacy import BudgetTier, assign_tiers

            tiers = tuple(BudgetTier(t.share, t.target_epsilon, t.name or "") for t in p.tiers)
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
    def _canaries_see_client_updates(self) -> Scenario:
        """The white-box canary audit scores each client's update, which SecAgg+ hides."""
        if self.privacy.secure_aggregation and self.audit.canaries:
            raise ValueError(
                "audit.canaries does not apply to privacy.secure-aggregation runs: the white-box canary "
                "audit scores each client's update, which SecAgg+ hides from the server; set canaries = 0"
            )
        if (self.audit.canaries or self.audit.input_canaries) and self.privacy.mode == "user":
            raise ValueError(
                "audit.canaries plants example-level canaries, which user-level DP bounds only through "
                'group privacy; with privacy.mode = "user" set canaries = 0 and input-canaries = 0 '
                '(or use mode "both")'
            )
        norm, clip = self.audit.canary_norm, self.privacy.max_grad_norm
        if norm is not None and self.privacy.is_sample_level and norm > clip:
            raise ValueError(
                f"audit.canary-norm = {norm:g} is above privacy.max-grad-norm = {clip:g}: DP-SGD would clip "
                "the canary to it; use at most the clipping norm (the default)"
            )
        return self

    @model_validator(mode="after")
    def _strategy_fits_privacy(self) -> Scenario:
        """User-level DP needs a plain mean of clipped updates; SecAgg+ needs a strategy that sums.

        Flower's DP-FedAvg wrappers noise the strategy's output, whose sensitivity
        is bounded only for a mean of clipped updates (not FedAvgM's or FedOpt's
        server step, and not a median or Krum's choice); SecAgg+ reveals only the
        sum of the cohort's updates, which a robust aggregator cannot work on.
        """
        strategy = self.federation.strategy
        entry = get_strategy_entry(strategy)
        if self.privacy.is_user_level and not entry.user_level_dp:
            plain = " or ".join(
                f'"{n}"' for n in available_strategies() if get_strategy_entry(n).user_level_dp
            )
            why = (
                f"{strategy!r} aggregates by order statistics or distances, whose output moves by more "
                "than one clipped update's share when one client changes"
                if entry.robust
                else f"{strategy!r} does not release a plain mean of the clipped updates (a server "
                "optimiser would carry earlier rounds' un-noised averages into later models)"
            )
            raise ValueError(
                f"privacy.mode {self.privacy.mode!r} needs federation.strategy = {plain}: Flower's "
                f"user-level DP wrappers add the noise after the strategy, and {why}"
            )
        if strategy == "krum":  # Krum scores each update by its n - f - 2 nearest (Blanchard et al. 2017)
            from fedsim.privacy import cohort_size

            f = self.federation.num_malicious_nodes or 0
            n = cohort_size(self.federation.num_clients, self.federation.fraction_train)
            if n - f - 2 < 1:
                raise ValueError(
                    f"federation.strategy = 'krum' scores each update by its n - f - 2 nearest, and a cohort "
                    f"of n = {n} with num-malicious-nodes f = {f} leaves {n - f - 2}; use a cohort of at "
                    f"least {f + 3} clients or a smaller num-malicious-nodes"
                )
        if self.privacy.secure_aggregation and entry.legacy is None:
            summing = ", ".join(f'"{n}"' for n in legacy_strategies())
            raise ValueError(
                f"privacy.secure-aggregation reveals only the sum of the cohort's updates, which strategy "
                f"{strategy!r} cannot aggregate (it needs each update); use one of {summing}"
            )
        return self

    @model_validator(mode="after")
    def _poisson_cohorts_fit(self) -> Scenario:
        """Poisson cohorts need Flower's Message-API path and, under user-level DP, fixed clipping."""
        if self.federation.cohort_sampling != "poisson":
            return self
        if self.privacy.secure_aggregation:
            raise ValueError(
                'federation.cohort-sampling = "poisson" does not apply to privacy.secure-aggregation runs '
                "(Flower's SecAgg+ workflow samples a fixed-size cohort); remove it"
            )
        if self.privacy.is_user_level and self.privacy.clipping == "adaptive":
            raise ValueError(
                'federation.cohort-sampling = "poisson" needs privacy.clipping = "fixed": adaptive '
                "clipping's clipped-count average has no fixed denominator"
            )
        return self

    def to_toml_dict(self) -> dict[str, Any]:
        """The fully resolved scenario (defaults filled in) with kebab-case keys.

        Keys the privacy mode does not use are left out, so the result is itself
        a valid scenario (a run's ``scenario.toml`` can be run again).
        """
        raw = self.model_dump(by_alias=True, exclude_none=True)
        raw["privacy"] = self.privacy.applicable(raw["privacy"])
        raw["federation"] = self.federation.applicable(raw["federation"])
        return raw
