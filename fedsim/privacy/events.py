"""Privacy events: the mechanisms a run applied, as immutable data (no ε), composed by the ledgers.

Like ``dp_accounting``'s ``dp_event.py``: an event says which mechanism ran with
which parameters; an accountant turns a history of events into ε. There are
two kinds, each with its own guarantee:

* :class:`PrivacyEvent`: one client's DP-SGD round (sample-level DP);
* :class:`UserLevelRelease`: one noised global model of DP-FedAvg (user-level DP).

A client reports its round's :class:`PrivacyEvent` in its reply metrics; the
conversion to and from those metrics lives here only
(:meth:`PrivacyEvent.to_metrics`, :meth:`PrivacyEvent.from_metrics`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

NOISE_MULTIPLIER_KEY = "noise-multiplier"
SAMPLE_RATE_KEY = "sample-rate"
STEPS_KEY = "steps"


def _check(noise_multiplier: float, sample_rate: float, steps: int) -> None:
    """Raise ValueError for σ < 0, q outside ``(0, 1]`` or steps < 0."""
    if noise_multiplier < 0:
        raise ValueError(f"noise_multiplier must be ≥ 0, got {noise_multiplier}")
    if not 0 < sample_rate <= 1:
        raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate}")
    if steps < 0:
        raise ValueError(f"steps must be ≥ 0, got {steps}")


@dataclass(frozen=True)
class PrivacyEvent:
    """One round of DP-SGD on one client: the mechanism's parameters, not its ε.

    Guarantee: sample-level (ε, δ)-DP for the client's local data set under the
    add/remove-one-example neighbouring relation, with each step's batch drawn by
    Poisson sampling (every example independently with probability
    ``sample_rate``) and each per-example gradient clipped to ``max_grad_norm``
    before Gaussian noise of std ``noise_multiplier * max_grad_norm`` is added
    (Abadi et al. 2016, https://arxiv.org/abs/1607.00133). This is the setting
    the accountants of :mod:`fedsim.privacy.accountants` (Opacus's RDP and PRV,
    dp_accounting's PLD) assume. Epsilon is composed by
    :class:`fedsim.privacy.PrivacyLedger`, never by the client.

    Attributes:
        noise_multiplier: σ, noise std divided by the clipping norm (≥ 0).
        sample_rate: Poisson sampling probability q in ``(0, 1]``.
        steps: noisy optimiser steps taken this round (≥ 0).

    Raises:
        ValueError: for σ < 0, q outside ``(0, 1]`` or steps < 0.

    Example:
        >>> event = PrivacyEvent(1.1, 0.01, 60)
        >>> PrivacyEvent.from_metrics({**event.to_metrics(), "num-examples": 600}) == event
        True
    """

    noise_multiplier: float
    sample_rate: float
    steps: int

    def __post_init__(self) -> None:
        _check(self.noise_multiplier, self.sample_rate, self.steps)

    def as_history_entry(self) -> tuple[float, float, int]:
        """The ``(noise_multiplier, sample_rate, num_steps)`` tuple Opacus accountants keep."""
        return (float(self.noise_multiplier), float(self.sample_rate), int(self.steps))

    def to_metrics(self) -> dict[str, float | int]:
        """The reply-metric entries a client sends the server (Flower ``MetricRecord`` values)."""
        return {
            NOISE_MULTIPLIER_KEY: float(self.noise_multiplier),
            SAMPLE_RATE_KEY: float(self.sample_rate),
            STEPS_KEY: int(self.steps),
        }

    @classmethod
    def from_metrics(cls, metrics: Mapping) -> PrivacyEvent:
        """Rebuild the event from a client reply's metrics (the inverse of :meth:`to_metrics`).

        Raises:
            KeyError: if the reply carries no privacy event (the client trained without DP-SGD).
        """
        return cls(
            noise_multiplier=float(metrics[NOISE_MULTIPLIER_KEY]),
            sample_rate=float(metrics[SAMPLE_RATE_KEY]),
            steps=int(metrics[STEPS_KEY]),
        )


@dataclass(frozen=True)
class UserLevelRelease:
    """One global model released by DP-FedAvg: a sampled Gaussian mechanism over whole clients.

    Guarantee: user-level (ε, δ)-DP of the released models under adding or
    removing one client's whole data set, with clients Poisson-sampled at
    ``sample_rate`` and each client's update clipped to the clipping norm before
    Gaussian noise of std ``noise_multiplier * clipping_norm`` is added to their
    sum (McMahan et al. 2018, "Learning Differentially Private Recurrent
    Language Models", https://arxiv.org/abs/1710.06963). One release is one
    step of the subsampled Gaussian mechanism, so Opacus's and dp_accounting's
    accountants compose it as ``(noise_multiplier, sample_rate, 1)``.

    Attributes:
        noise_multiplier: z, the noise std over the clipping norm that the release
            really had (see :func:`fedsim.privacy.release_noise_multiplier`), ≥ 0.
        sample_rate: client sampling rate q (cohort / clients) in ``(0, 1]``.

    Raises:
        ValueError: for z < 0 or q outside ``(0, 1]``.
    """

    noise_multiplier: float
    sample_rate: float

    def __post_init__(self) -> None:
        _check(self.noise_multiplier, self.sample_rate, 1)

    def as_history_entry(self) -> tuple[float, float, int]:
        """The ``(noise_multiplier, sample_rate, 1)`` entry accountants compose."""
        return (float(self.noise_multiplier), float(self.sample_rate), 1)
