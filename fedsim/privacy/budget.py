"""The privacy budget of a run: modes, per-client budgets and their tiers, user-level DP."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from fedsim.privacy.accountants.registry import available_accountants

PRIVACY_MODES = ("none", "sample", "user", "both")
"""``none``: plain federated learning. ``sample``: sample-level DP-SGD on every client
(protects one training example). ``user``: user-level DP-FedAvg on the server's
aggregate (protects one client's whole data set). ``both``: the two together."""

CALIBRATIONS = ("all-rounds", "expected-rounds")
"""Rounds sample-level noise is calibrated for: every round (a client can never
overspend), or the rounds a client joins on average (``rounds * fraction_train``,
rounded up), which needs less noise and relies on the budget being enforced."""

SAMPLE_LEVEL_MODES = frozenset({"sample", "both"})
"""Modes in which clients train with DP-SGD (sample-level DP)."""

USER_LEVEL_MODES = frozenset({"user", "both"})
"""Modes in which the server applies DP-FedAvg (user-level DP)."""


def _finite_positive(name: str, value: float | None) -> None:
    if value is not None and not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")


@dataclass(frozen=True)
class BudgetTier:
    """A share of the clients that holds the same sample-level budget.

    Args:
        share: fraction of the clients in this tier, in ``(0, 1]``; a run's
            tiers add up to 1.
        target_epsilon: each of these clients' ε budget over the run (> 0).
        name: label used in reports; ``""`` labels the tier ``"ε=<target_epsilon>"``.

    Raises:
        ValueError: for a share outside ``(0, 1]`` or a target ε that is not finite and > 0.
    """

    share: float
    target_epsilon: float
    name: str

    def __post_init__(self) -> None:
        if not 0 < self.share <= 1:
            raise ValueError(f"tier share must be in (0, 1], got {self.share}")
        _finite_positive("tier target_epsilon", self.target_epsilon)
        if not self.name:
            object.__setattr__(self, "name", f"ε={self.target_epsilon:g}")


@lru_cache(maxsize=16)
def assign_tiers(num_clients: int, tiers: tuple[BudgetTier, ...], *, seed: int) -> tuple[int, ...]:
    """Which tier each client belongs to: a seeded random assignment of exact sizes.

    Tier sizes are ``round(share * num_clients)`` (largest-remainder rounding, so
    they add up to ``num_clients``); clients are shuffled with ``seed`` before
    being cut into tiers, so a tier is not tied to a data split's order.

    Args:
        num_clients: clients in the federation (≥ 1).
        tiers: the tiers; their shares must add up to 1 (±1e-6).
        seed: the run's seed.

    Returns:
        ``tier[client]``: the tier index of each client, length ``num_clients``;
        all zeros when ``tiers`` is empty (cached: computed once per run).

    Raises:
        ValueError: if the shares do not add up to 1.

    Example:
        >>> tiers = (BudgetTier(0.3, 1.0, ""), BudgetTier(0.7, 8.0, ""))
        >>> sorted(assign_tiers(10, tiers, seed=0)).count(0)
        3
    """
    if not tiers:
        return (0,) * num_clients
    shares = np.array([t.share for t in tiers])
    if abs(shares.sum() - 1) > 1e-6:
        raise ValueError(f"tier shares must add up to 1, got {shares.sum():g}")
    exact = shares * num_clients
    sizes = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - sizes), kind="stable")[: num_clients - sizes.sum()]:
        sizes[i] += 1
    order = np.random.default_rng(seed).permutation(num_clients)
    tier = np.empty(num_clients, dtype=int)
    start = 0
    for index, size in enumerate(sizes):
        tier[order[start : start + size]] = index
        start += size
    return tuple(tier.tolist())


@dataclass(frozen=True)
class UserLevelDP:
    """User-level DP-FedAvg on the server's aggregate, through Flower's DP wrappers.

    DP-FedAvg: McMahan et al. 2018, https://arxiv.org/abs/1710.06963; Flower's
    ``DifferentialPrivacy{Server,Client}Side{Fixed,Adaptive}Clipping``.

    Guarantee: (ε, δ)-DP of the sequence of global models with respect to adding
    or removing one *client's whole data set*. Each round every sampled client's
    model update is clipped to L2 norm ``clipping_norm`` (on the server, or on
    the client with Flower's clipping mods) and the uniform average gets Gaussian
    noise of std ``noise_multiplier * clipping_norm / cohort``. Adaptive clipping
    (Andrew et al. 2021, https://arxiv.org/abs/1905.03871) moves the norm each
    round towards the ``target_clipped_quantile`` of update norms, from a noisy
    count of clipped updates.

    Args:
        noise_multiplier: z, noise std over the clipping norm (> 0), or None to
            calibrate it from ``target_epsilon``.
        target_epsilon: user-level ε budget for the run, or None. With a fixed
            ``noise_multiplier`` too, the run stops before the round that would exceed it.
        clipping: ``fixed`` or ``adaptive``.
        clip_on: ``server`` (the server sees each update) or ``client``.
        clipping_norm: the fixed norm, or the initial norm when adaptive (> 0).
        target_clipped_quantile: adaptive: share of updates meant to be clipped, in [0, 1].
        clip_norm_lr: adaptive: geometric step size of the norm (> 0; Andrew et al.: 0.2).
        clipped_count_stddev: adaptive: std of the noise on the clipped count
            (None: Flower's default, cohort / 20).

    Raises:
        ValueError: on an unknown choice, a value out of range, or neither
            ``noise_multiplier`` nor ``target_epsilon``.
    """

    noise_multiplier: float | None
    target_epsilon: float | None
    clipping: str
    clip_on: str
    clipping_norm: float
    target_clipped_quantile: float
    clip_norm_lr: float
    clipped_count_stddev: float | None

    def __post_init__(self) -> None:
        if self.clipping not in ("fixed", "adaptive"):
            raise ValueError(f"clipping must be 'fixed' or 'adaptive', got {self.clipping!r}")
        if self.clip_on not in ("server", "client"):
            raise ValueError(f"clip_on must be 'server' or 'client', got {self.clip_on!r}")
        _finite_positive("user-level noise_multiplier", self.noise_multiplier)
        _finite_positive("user-level target_epsilon", self.target_epsilon)
        _finite_positive("clipping_norm", self.clipping_norm)
        _finite_positive("clip_norm_lr", self.clip_norm_lr)
        if not 0 <= self.target_clipped_quantile <= 1:
            raise ValueError(f"target_clipped_quantile must be in [0, 1], got {self.target_clipped_quantile}")
        if self.noise_multiplier is None and self.target_epsilon is None:
            raise ValueError("user-level DP needs a noise_multiplier or a target_epsilon")


@dataclass(frozen=True)
class PrivacyBudget:
    """The privacy budget of a run, following pfl's "give two of ε, δ, σ" rule.

    Sample-level (``mode`` ``sample`` or ``both``): either ``target_epsilon`` is
    given and each client's noise multiplier is calibrated to it
    (:func:`fedsim.privacy.plan_client_round`), or ``noise_multiplier``
    is fixed. Every client's ε is composed by the ledger over the rounds it
    joined; a client whose next round would exceed its budget (its tier's
    ``target_epsilon``, else ``target_epsilon``) does not train.

    Args:
        mode: one of :data:`PRIVACY_MODES`.
        target_delta: δ of every (ε, δ) statement, in ``(0, 1)``.
        max_grad_norm: per-sample gradient clipping bound C (L2 norm, > 0).
        target_epsilon: each client's sample-level ε budget over the run (> 0), or None.
        noise_multiplier: DP-SGD σ, noise std over ``max_grad_norm`` (≥ 0), or None
            to calibrate it from the budget.
        accountant: a name of :func:`fedsim.privacy.available_accountants`, for both levels.
        tiers: budget tiers (shares adding up to 1), or ``()`` for one budget.
        calibrate_for: one of :data:`CALIBRATIONS`.
        user_level: DP-FedAvg settings for ``mode`` ``user`` or ``both``, else None.

    Raises:
        ValueError: on an unknown choice, a value out of range, or a missing or
            contradictory noise setting for the mode.
    """

    mode: str
    target_delta: float
    max_grad_norm: float
    target_epsilon: float | None
    noise_multiplier: float | None
    accountant: str
    tiers: tuple[BudgetTier, ...]
    calibrate_for: str
    user_level: UserLevelDP | None

    def __post_init__(self) -> None:
        choices = {
            "mode": (self.mode, PRIVACY_MODES),
            "accountant": (self.accountant, tuple(available_accountants())),
            "calibrate_for": (self.calibrate_for, CALIBRATIONS),
        }
        for name, (value, allowed) in choices.items():
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if not 0 < self.target_delta < 1:
            raise ValueError(f"target_delta must be in (0, 1), got {self.target_delta}")
        _finite_positive("max_grad_norm", self.max_grad_norm)
        _finite_positive("target_epsilon", self.target_epsilon)
        if self.noise_multiplier is not None and not (
            self.noise_multiplier >= 0 and math.isfinite(self.noise_multiplier)
        ):
            raise ValueError(f"noise_multiplier must be ≥ 0, got {self.noise_multiplier}")
        if self.tiers and abs(sum(t.share for t in self.tiers) - 1) > 1e-6:
            raise ValueError(f"tier shares must add up to 1, got {sum(t.share for t in self.tiers):g}")
        if (
            self.is_sample_level
            and not self.tiers
            and self.target_epsilon is None
            and self.noise_multiplier is None
        ):
            raise ValueError("sample-level DP needs target_epsilon, noise_multiplier or tiers")
        if self.is_user_level != (self.user_level is not None):
            raise ValueError(f"mode {self.mode!r} {'needs' if self.is_user_level else 'takes no'} user_level")

    @property
    def is_sample_level(self) -> bool:
        """Whether clients train with DP-SGD (modes ``sample`` and ``both``)."""
        return self.mode in SAMPLE_LEVEL_MODES

    @property
    def is_user_level(self) -> bool:
        """Whether the server applies DP-FedAvg (modes ``user`` and ``both``)."""
        return self.mode in USER_LEVEL_MODES

    def client_budget(self, client: int, num_clients: int, *, seed: int) -> float | None:
        """The sample-level ε budget of one client (its tier's; None: only σ given)."""
        if not self.tiers:
            return self.target_epsilon
        return self.tiers[assign_tiers(num_clients, self.tiers, seed=seed)[client]].target_epsilon

    def client_budgets(self, num_clients: int, *, seed: int) -> list[float | None]:
        """Each client's sample-level ε budget (None: no budget, only σ given)."""
        if not self.tiers:
            return [self.target_epsilon] * num_clients
        tier = assign_tiers(num_clients, self.tiers, seed=seed)
        return [self.tiers[t].target_epsilon for t in tier]

    def client_tiers(self, num_clients: int, *, seed: int) -> list[str | None]:
        """Each client's tier name (None without tiers)."""
        if not self.tiers:
            return [None] * num_clients
        return [self.tiers[t].name for t in assign_tiers(num_clients, self.tiers, seed=seed)]
