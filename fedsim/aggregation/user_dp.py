"""User-level DP (DP-FedAvg) around a strategy: Flower's clipping-and-noise wrappers, chosen by name.

Flower 1.42's Message-API wrappers clip each client's model update to a norm
and add Gaussian noise of std ``noise_multiplier * clipping_norm / cohort`` to
the aggregate: on the server (``server``) or with the clients' clipping mods
(``client``), with a fixed norm or one adapted each round (Andrew et al. 2021,
https://arxiv.org/abs/1905.03871). Epsilon is not computed here: the privacy
layer's :class:`fedsim.privacy.ReleaseLedger` accounts each round's release
from the values the wrapper really used (:func:`release_state`).
"""

from __future__ import annotations

import math

import numpy as np
from flwr.app import Array, ArrayRecord
from flwr.serverapp.strategy import (
    DifferentialPrivacyClientSideAdaptiveClipping,
    DifferentialPrivacyClientSideFixedClipping,
    DifferentialPrivacyServerSideAdaptiveClipping,
    DifferentialPrivacyServerSideFixedClipping,
)


class _AdaptiveFixes:
    """Three corrections to Flower 1.42's adaptive clipping, so that the noise matches its accounting.

    1. **Direction of the norm update.** Flower counts the *clipped* updates but
       applies ``C * exp(-lr * (clipped_fraction - target))``: when most updates
       are clipped it lowers the norm further, and the norm runs away from the
       target quantile. With the clipped fraction b̄ the update of Andrew et al.
       (2021, https://arxiv.org/abs/1905.03871, Sec. 3) is
       ``C * exp(lr * (b̄ - target))``.
    2. **The norm the noise is scaled by.** Flower updates the norm before it
       adds the noise, so a round's updates clipped to C get noise scaled to the
       *next* round's norm. Here the noise uses the norm the updates were clipped to.
    3. **Splitting z between the update and the clipped count.** Flower takes
       ``z_update = (z^-2 - (2 σ_b)^-2)^-1/2``, the split of Andrew et al.
       for centred bits (sensitivity 1/2). Flower counts 0/1 bits, whose sum
       has sensitivity 1, so the count is a Gaussian release with multiplier
       σ_b, and the split that makes the round one release with multiplier z is
       ``z_update = (z^-2 - σ_b^-2)^-1/2`` (needs ``z < σ_b``).

    Raises:
        ValueError: if ``noise_multiplier >= clipped_count_stddev`` (no split exists).
    """

    def __init__(self, strategy, noise_multiplier: float, num_sampled_clients: int, **kwargs) -> None:
        super().__init__(strategy, noise_multiplier, num_sampled_clients, **kwargs)
        count_stddev = self.clipped_count_stddev
        if noise_multiplier > 0:
            if noise_multiplier >= count_stddev:
                raise ValueError(
                    f"adaptive clipping with noise multiplier {noise_multiplier:g} needs a clipped-count "
                    f"stddev above it, got {count_stddev:g}"
                )
            self.noise_multiplier = (noise_multiplier**-2 - count_stddev**-2) ** -0.5
        self.noise_clipping_norm = self.clipping_norm

    def _geometric_update(self, clipped_fraction: float) -> None:
        self.noise_clipping_norm = self.clipping_norm  # the norm this round's updates were clipped to
        self.clipping_norm *= math.exp(self.clip_norm_lr * (clipped_fraction - self.target_clipped_quantile))

    def _add_noise_to_aggregated_arrays(self, aggregated):
        next_norm, self.clipping_norm = self.clipping_norm, self.noise_clipping_norm
        try:
            return super()._add_noise_to_aggregated_arrays(aggregated)
        finally:
            self.clipping_norm = next_norm


class ServerSideAdaptiveClipping(_AdaptiveFixes, DifferentialPrivacyServerSideAdaptiveClipping):
    """Flower's server-side adaptive clipping with the corrections of :class:`_AdaptiveFixes`."""


class ClientSideAdaptiveClipping(_AdaptiveFixes, DifferentialPrivacyClientSideAdaptiveClipping):
    """Flower's client-side adaptive clipping with the corrections of :class:`_AdaptiveFixes`."""


_WRAPPERS = {
    ("fixed", "server"): DifferentialPrivacyServerSideFixedClipping,
    ("fixed", "client"): DifferentialPrivacyClientSideFixedClipping,
    ("adaptive", "server"): ServerSideAdaptiveClipping,
    ("adaptive", "client"): ClientSideAdaptiveClipping,
}


class FixedDenominator:
    """Divide the sum of the cohort's updates by a fixed number, not by the cohort's size.

    Under Poisson sampling of clients the cohort's size varies with who is in it, so
    the average ``sum / |cohort|`` has no fixed sensitivity. McMahan et al. 2018
    (https://arxiv.org/abs/1710.06963, Sec. 2: the fixed-denominator estimator)
    release ``sum / W`` with ``W`` fixed (here Flower's cohort size
    ``max(int(clients × fraction), 1)``, close to the expected cohort): its sensitivity
    is ``C / W``, so Flower's noise of std ``z * C / W`` makes each round exactly a
    Poisson-sampled Gaussian mechanism with multiplier z. This strategy sits
    between the DP wrapper and FedAvg: it rescales FedAvg's uniform mean of the
    ``m`` (clipped) updates by ``m / W`` around the round's global model.

    Args:
        strategy: the averaging strategy (FedAvg or FedProx, uniform weights).
        denominator: W, ≥ 1.

    Raises:
        ValueError: if ``denominator`` is below 1.
    """

    def __init__(self, strategy, denominator: int) -> None:
        if denominator < 1:
            raise ValueError(f"denominator must be ≥ 1, got {denominator}")
        self.strategy, self.denominator = strategy, denominator
        self._arrays: ArrayRecord | None = None

    def configure_train(self, server_round, arrays, config, grid):
        """The inner strategy's; keeps the round's global model."""
        self._arrays = arrays
        return self.strategy.configure_train(server_round, arrays, config, grid)

    def aggregate_train(self, server_round, replies):
        """``w + (m / W) * (mean - w)``: the sum of the ``m`` updates over W."""
        replies = list(replies)
        mean, metrics = self.strategy.aggregate_train(server_round, replies)
        if mean is None:
            return mean, metrics
        scale = len(replies) / self.denominator
        released = {
            key: Array(np.asarray(w + scale * (mean[key].numpy() - w), dtype=w.dtype))
            for key, w in ((k, a.numpy()) for k, a in self._arrays.items())
        }
        return ArrayRecord(released), metrics

    def __getattr__(self, name: str):
        return getattr(self.strategy, name)


def noise_only_release(wrapper, arrays: ArrayRecord) -> ArrayRecord:
    """A round's release when no client trained: the global model plus the wrapper's noise.

    Under Poisson sampling (with :class:`FixedDenominator`) every round is a
    Gaussian release, an empty cohort's too (its sum of updates is 0): skipping
    the noise would reveal that the cohort was empty.

    Args:
        wrapper: a fixed-clipping wrapper from :func:`wrap_user_level`.
        arrays: the round's global model.
    """
    return wrapper._add_noise_to_aggregated_arrays(arrays)


def wrap_user_level(strategy, user, *, noise_multiplier: float, num_sampled_clients: int):
    """Wrap ``strategy`` in the DP-FedAvg wrapper ``user`` names.

    Args:
        strategy: the Flower strategy doing the (uniform) averaging.
        user: :class:`fedsim.privacy.UserLevelDP` (clipping, clip_on, clipping_norm, ...).
        noise_multiplier: z (> 0), already resolved from the user-level budget.
        num_sampled_clients: clients sampled per round (the cohort, ≥ 1).

    Returns:
        The wrapping strategy. For ``clip_on="client"`` the ClientApp needs
        :func:`client_mods`.

    Raises:
        ValueError: when adaptive clipping's count noise is too small for
            ``noise_multiplier`` (z must be below clipped_count_stddev).
    """
    wrapper = _WRAPPERS[(user.clipping, user.clip_on)]
    if user.clipping == "fixed":
        return wrapper(strategy, noise_multiplier, user.clipping_norm, num_sampled_clients)
    return wrapper(
        strategy,
        noise_multiplier,
        num_sampled_clients,
        initial_clipping_norm=user.clipping_norm,
        target_clipped_quantile=user.target_clipped_quantile,
        clip_norm_lr=user.clip_norm_lr,
        clipped_count_stddev=user.clipped_count_stddev,
    )


def zero_safe(mod):
    """A Flower clipping mod that lets a zero update through unchanged.

    Flower's clipping mods divide the clipping norm by the update's norm, so a
    client whose model did not change (one skipped because its budget is spent)
    fails with ``ZeroDivisionError``; a zero update needs no clipping.

    Args:
        mod: ``fixedclipping_mod`` or ``adaptiveclipping_mod`` (legacy or Message API).
    """

    def guarded(msg, context, call_next):
        replies = []

        def call_and_keep(inner_msg, inner_context):
            replies.append(call_next(inner_msg, inner_context))
            return replies[-1]

        try:
            return mod(msg, context, call_and_keep)
        except ZeroDivisionError:
            if not replies:  # raised by the client itself, not by the clipping
                raise
            return replies[-1]

    guarded.__name__ = f"zero_safe_{mod.__name__}"
    return guarded


def client_mods(user) -> list:
    """The Flower client mods client-side clipping needs (none for server-side or without user-level DP).

    Args:
        user: :class:`fedsim.privacy.UserLevelDP`, or None.
    """
    from flwr.clientapp.mod import adaptiveclipping_mod, fixedclipping_mod

    if user is None or user.clip_on == "server":
        return []
    return [zero_safe(fixedclipping_mod if user.clipping == "fixed" else adaptiveclipping_mod)]


def release_state(wrapper) -> dict[str, float | int | None]:
    """What a DP wrapper noises the aggregate with: the inputs of a round's accounting.

    Args:
        wrapper: a strategy from :func:`wrap_user_level` (or Flower's legacy
            client-side fixed clipping wrapper).

    Returns:
        ``update_noise_multiplier`` (z_Δ), ``clipping_norm`` (the L2 norm the
        last released round's updates were clipped to, which its noise is scaled
        by), ``num_sampled_clients`` and ``clipped_count_stddev`` (None for fixed
        clipping). Call it right after a release.
    """
    adaptive = isinstance(wrapper, (ServerSideAdaptiveClipping, ClientSideAdaptiveClipping))
    return {
        "update_noise_multiplier": float(wrapper.noise_multiplier),
        "clipping_norm": float(getattr(wrapper, "noise_clipping_norm", wrapper.clipping_norm)),
        "num_sampled_clients": int(wrapper.num_sampled_clients),
        "clipped_count_stddev": float(wrapper.clipped_count_stddev) if adaptive else None,
    }
