"""The ``[privacy]`` section of a scenario: its keys, their defaults and the rules between them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, model_validator

from fedsim.privacy import available_accountants
from fedsim.privacy.budget import CALIBRATIONS, PRIVACY_MODES, SAMPLE_LEVEL_MODES, USER_LEVEL_MODES
from fedsim.privacy.engine import DP_LSTM_LAYERS, GRAD_SAMPLE_MODES
from fedsim.privacy.stopping import WHEN_TOO_FEW
from fedsim.scenario.errors import kebab
from fedsim.scenario.sections import PositiveFloat, _Section, choice

PrivacyMode = choice(PRIVACY_MODES)
AccountantName = choice(available_accountants())
GradSampleMode = choice(GRAD_SAMPLE_MODES)
DPLSTMLayer = choice(DP_LSTM_LAYERS)
Calibration = choice(CALIBRATIONS)
WhenTooFew = choice(WHEN_TOO_FEW)

DEFAULT_TARGET_EPSILON = 3.0
"""Target ε when a sample-level DP scenario names neither target-epsilon, noise-multiplier nor tiers."""

_SAMPLE_KEYS = (
    "target-epsilon",
    "noise-multiplier",
    "grad-sample-mode",
    "dp-lstm",
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

    See :class:`fedsim.privacy.PrivacyBudget`, :class:`fedsim.privacy.UserLevelDP`,
    :class:`fedsim.privacy.DPSGDSpec` and :class:`fedsim.privacy.StoppingRule`.
    """

    mode: PrivacyMode = "sample"
    accountant: AccountantName = "rdp"
    target_delta: Annotated[float, Field(gt=0, lt=1)] = 1e-5
    # sample-level DP-SGD (Opacus)
    target_epsilon: PositiveFloat | None = None
    noise_multiplier: Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)] | None = None
    max_grad_norm: PositiveFloat = 1.0
    grad_sample_mode: GradSampleMode = "ghost"
    dp_lstm: DPLSTMLayer = "fast"
    secure_mode: bool = False
    tiers: Annotated[list[TierSection], Field(min_length=1, max_length=100)] | None = None
    calibrate_for: Calibration = "all-rounds"
    min_clients: Annotated[int, Field(ge=1, le=100_000)] = 1
    when_too_few: WhenTooFew = "stop"
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
    _ignored: tuple[str, ...] = PrivateAttr(default=())

    @property
    def ignored_keys(self) -> tuple[str, ...]:
        """Keys of the DP modes that the file gave but ``mode = "none"`` ignores (kebab-case, sorted)."""
        return self._ignored

    @model_validator(mode="wrap")
    @classmethod
    def _none_ignores_dp_keys(cls, data: Any, handler) -> PrivacySection:
        """``mode = "none"`` (e.g. ``--set privacy.mode=none`` on a DP scenario) drops the DP keys.

        Turning DP off is the first thing a user tries; the keys of the other modes
        are set aside (see :attr:`ignored_keys`) instead of refused, so the run
        says which it ignored and its resolved scenario leaves them out.
        """
        if not isinstance(data, dict) or data.get("mode") != "none":
            return handler(data)
        dp_keys = {*_SAMPLE_KEYS, "max-grad-norm", *_USER_KEYS, *_ADAPTIVE_KEYS}
        ignored = tuple(sorted(k for k in data if k in dp_keys))
        section = handler({k: v for k, v in data.items() if k not in dp_keys})
        section._ignored = ignored
        return section

    @property
    def is_sample_level(self) -> bool:
        """Whether clients train with DP-SGD (modes ``sample`` and ``both``)."""
        return self.mode in SAMPLE_LEVEL_MODES

    @property
    def is_user_level(self) -> bool:
        """Whether the server applies DP-FedAvg (modes ``user`` and ``both``)."""
        return self.mode in USER_LEVEL_MODES

    def applicable(self, dumped: dict[str, Any]) -> dict[str, Any]:
        """``dumped`` (this section with kebab-case keys) without the keys its mode does not use."""
        sample, user = self.is_sample_level, self.is_user_level
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
            and data.get("mode", "sample") in SAMPLE_LEVEL_MODES
            and not {"target-epsilon", "noise-multiplier", "tiers"} & set(data)
        ):
            return {**data, "target-epsilon": DEFAULT_TARGET_EPSILON}
        return data

    @model_validator(mode="after")
    def _keys_match_mode(self) -> PrivacySection:
        """Every key belongs to the chosen mode; all problems are listed at once."""
        given = {kebab(name) for name in self.model_fields_set}
        sample, user = self.is_sample_level, self.is_user_level
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
