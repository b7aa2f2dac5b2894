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

from flwr.serverapp.strategy import (
    DifferentialPrivacyClientSideAdaptiveClipping,
    DifferentialPrivacyClientSideFixedClipping,
    DifferentialPrivacyServerSideAdaptiveClipping,
    DifferentialPrivacyServerSideFixedClipping,
)


class _QuantileUpdate:
    """Adaptive clipping's norm update with the sign of Andrew et al. (2021), Sec. 3.

    Flower 1.42 counts the *clipped* updates but applies
    ``C * exp(-lr * (clipped_fraction - target))``, so when most updates are
    clipped it lowers the norm further (and raises it when few are): the norm
    runs away from the target quantile instead of tracking it. With the
    clipped fraction b̄ the update that tracks the target is
    ``C * exp(lr * (b̄ - target))``; this mixin applies it.
    """

    def _geometric_update(self, clipped_fraction: float) -> None:
        self.clipping_norm *= math.exp(self.clip_norm_lr * (clipped_fraction - self.target_clipped_quantile))


class ServerSideAdaptiveClipping(_QuantileUpdate, DifferentialPrivacyServerSideAdaptiveClipping):
    """Flower's server-side adaptive clipping with the norm update of :class:`_QuantileUpdate`."""


class ClientSideAdaptiveClipping(_QuantileUpdate, DifferentialPrivacyClientSideAdaptiveClipping):
    """Flower's client-side adaptive clipping with the norm update of :class:`_QuantileUpdate`."""


_WRAPPERS = {
    ("fixed", "server"): DifferentialPrivacyServerSideFixedClipping,
    ("fixed", "client"): DifferentialPrivacyClientSideFixedClipping,
    ("adaptive", "server"): ServerSideAdaptiveClipping,
    ("adaptive", "client"): ClientSideAdaptiveClipping,
}


def wrap_user_level(strategy, user, *, noise_multiplier: float, cohort: int):
    """Wrap ``strategy`` in the DP-FedAvg wrapper ``user`` names.

    Args:
        strategy: the Flower strategy doing the (uniform) averaging.
        user: :class:`fedsim.privacy.UserLevelDP` (clipping, clip_on, clipping_norm, ...).
        noise_multiplier: z (> 0), already resolved from the user-level budget.
        cohort: clients sampled per round (Flower's ``num_sampled_clients``).

    Returns:
        The wrapping strategy. For ``clip_on="client"`` the ClientApp needs
        :func:`client_mods`.

    Raises:
        ValueError: from Flower, e.g. when adaptive clipping's count noise is too
            small for ``noise_multiplier`` (z must be below 2 * clipped_count_stddev).
    """
    wrapper = _WRAPPERS[(user.clipping, user.clip_on)]
    if user.clipping == "fixed":
        return wrapper(strategy, noise_multiplier, user.clipping_norm, cohort)
    return wrapper(
        strategy,
        noise_multiplier,
        cohort,
        initial_clipping_norm=user.clipping_norm,
        target_clipped_quantile=user.target_clipped_quantile,
        clip_norm_lr=user.clip_norm_lr,
        clipped_count_stddev=user.clipped_count_stddev,
    )


def client_mods(user) -> list:
    """The Flower client mods client-side clipping needs (none for server-side)."""
    from flwr.clientapp.mod import adaptiveclipping_mod, fixedclipping_mod

    if user is None or user.clip_on == "server":
        return []
    return [fixedclipping_mod if user.clipping == "fixed" else adaptiveclipping_mod]


def release_state(wrapper) -> dict[str, float | int | None]:
    """What a DP wrapper will noise the next aggregate with: the inputs of the round's accounting.

    Returns:
        ``update_noise_multiplier`` (z_Δ), ``clipping_norm`` (current C),
        ``cohort`` and ``clipped_count_stddev`` (None for fixed clipping).
    """
    adaptive = isinstance(wrapper, (ServerSideAdaptiveClipping, ClientSideAdaptiveClipping))
    return {
        "update_noise_multiplier": float(wrapper.noise_multiplier),
        "clipping_norm": float(wrapper.clipping_norm),
        "cohort": int(wrapper.num_sampled_clients),
        "clipped_count_stddev": float(wrapper.clipped_count_stddev) if adaptive else None,
    }
