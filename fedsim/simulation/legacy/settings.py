"""SecAgg+ protocol parameters, and what quantisation does to the aggregate.

SecAgg+ (Bell et al. 2020, "Secure Single-Server Aggregation with
(Poly)Logarithmic Overhead", https://eprint.iacr.org/2020/704) masks each
client's quantised model with pairwise and private masks that cancel in the sum.

**What SecAgg+ does to the numbers.** Client i with weight ``w_i`` (its
``"weight"`` metric) sends its model ``x_i`` scaled by ``d_i = round(w_i / M * Q) / Q``
(``M`` = ``max_weight``, ``Q`` = ``quantization_range``), clipped to
``[-c, c]`` (``c`` = ``clipping_range``) and stochastically rounded to a
multiple of the step ``2c / Q``. The server gets ``sum(d_i x_i) / sum(d_i)``,
FedAvg's weighted mean, to within :func:`quantization_error_bound` per
parameter: about 1.6 steps times ``M / mean(w_i)`` (one step is 3.8e-6 at
Flower's defaults ``c = 8``, ``Q = 2**22``). A parameter with ``|d_i x_i| > c``
is clipped silently, and a weight above ``M`` can overflow the masks' modulus;
hence ``max_weight`` defaults to the largest client weight.
"""

from __future__ import annotations

from dataclasses import dataclass

from flwr.server.workflow import SecAggPlusWorkflow

from fedsim.simulation.client_app import aggregation_weight
from fedsim.simulation.shards import client_partitions
from fedsim.simulation.spec import RunSpec


@dataclass(frozen=True)
class SecAggSettings:
    """SecAgg+ protocol parameters (Flower's ``SecAggPlusWorkflow``; defaults as in Flower's example).

    Args:
        num_shares: shares each client's secrets are split into, one per
            neighbour (an int > 2, or a float: that share of the sampled clients).
            Flower has no default; its example uses 3.
        reconstruction_threshold: shares needed to rebuild a secret (an int <
            ``num_shares``, or a float in ``(0, 1]``: that share of ``num_shares``).
            More tolerates fewer dropouts but resists more colluding clients.
            Flower has no default; its example uses 2.
        clipping_range: every weighted parameter ``d_i x_i`` is clipped to
            ``[-clipping_range, clipping_range]`` before quantisation (> 0;
            Flower's default 8.0).
        quantization_range: number of quantisation levels ``Q`` over
            ``[-clipping_range, clipping_range]`` (int > 0; Flower's default 2**22).
        modulus_range: the masks' modulus, a power of 2 above
            ``quantization_range`` (Flower's default 2**32); the sum of ``n``
            clients' values stays below it while ``n * Q`` does.
        max_weight: ``M``, the largest client weight expected; weights are sent
            as ``w_i / M`` quantised to ``Q`` levels. None (default): the largest
            client's weight in this federation (1 under user-level DP). Flower's
            default is 1000.
        timeout_s: seconds each protocol stage waits for replies (None: no limit;
            Flower's default).

    Raises:
        ValueError: if ``clipping_range`` or ``max_weight`` is not > 0.
    """

    num_shares: int | float = 3
    reconstruction_threshold: int | float = 2
    clipping_range: float = 8.0
    quantization_range: int = 2**22
    modulus_range: int = 2**32
    max_weight: float | None = None
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        if not self.clipping_range > 0:
            raise ValueError(f"clipping_range must be > 0, got {self.clipping_range}")
        if self.max_weight is not None and not self.max_weight > 0:
            raise ValueError(f"max_weight must be > 0, got {self.max_weight}")

    def create_workflow(self, *, max_weight: float) -> SecAggPlusWorkflow:
        """Flower's workflow for these settings (Flower validates the share counts and ranges).

        Args:
            max_weight: ``M`` to use when :attr:`max_weight` is None (> 0).

        Returns:
            A new ``SecAggPlusWorkflow``.
        """
        return SecAggPlusWorkflow(
            self.num_shares,
            self.reconstruction_threshold,
            max_weight=float(self.max_weight or max_weight),
            clipping_range=float(self.clipping_range),
            quantization_range=self.quantization_range,
            modulus_range=self.modulus_range,
            timeout=self.timeout_s,
        )


def quantization_error_bound(
    settings: SecAggSettings, *, weights: list[float], max_weight: float, spread: float | None = None
) -> float:
    """Largest difference, per parameter, between the SecAgg+ aggregate and FedAvg's exact weighted mean.

    With ``step = 2c / Q``, ``d_i = round(w_i / M * Q) / Q`` and ``D = sum(d_i)``,
    the bound is ``n * (1 + 2.5 * Q / 2**24) * step / D`` (each client's
    stochastic rounding moves its value by under one step, float32 arithmetic by
    under ``2.5 * Q / 2**24`` steps) plus ``n * spread / (2 * Q * D)`` (the weights
    rounded to multiples of ``M / Q``) plus ``c / 2**24`` (the float32 result).
    It holds when no weighted parameter is clipped (``|d_i x_i| <= c``).

    Args:
        settings: the protocol parameters (``c``, ``Q``).
        weights: every participating client's weight ``w_i`` (≥ 0, at least one > 0).
        max_weight: ``M`` as used in the run (> 0).
        spread: ``max_i |x_i - mean|`` over parameters, if known; default ``2c``.

    Returns:
        The bound, in the model parameters' units.

    Example:
        >>> bound = quantization_error_bound(SecAggSettings(), weights=[449, 449, 449], max_weight=449)
        >>> round(bound, 8)  # c = 8, Q = 2**22: about 2.25 quantisation steps of 3.8e-6
        8.58e-06
    """
    c, q = settings.clipping_range, settings.quantization_range
    n = len(weights)
    d_total = sum(round(w / max_weight * q) for w in weights) / q
    spread = 2 * c if spread is None else spread
    step = 2 * c / q
    return n * (1 + 2.5 * q / 2**24) * step / d_total + n * spread / (2 * q * d_total) + c / 2**24


def largest_weight(spec: RunSpec, *, uniform: bool) -> float:
    """``M``: the largest weight a client of this federation reports (1 when clients count once).

    Args:
        spec: the run (its data, partition and privacy).
        uniform: whether every client counts once (user-level DP).
    """
    if uniform:
        return 1.0
    largest = max(len(p) for p in client_partitions(spec.data, spec.partition))
    return float(aggregation_weight(spec.privacy, largest))
