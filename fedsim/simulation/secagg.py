"""SecAgg+ secure aggregation: the server learns only the clients' weighted sum, never one client's model.

SecAgg+ (Bell et al. 2020, "Secure Single-Server Aggregation with
(Poly)Logarithmic Overhead", https://eprint.iacr.org/2020/704) masks each
client's quantised model with pairwise and private masks that cancel in the sum;
secret-shared keys let the server remove the masks of clients that drop out.
Flower 1.42 implements it only in its legacy API (``SecAggPlusWorkflow`` in a
``DefaultWorkflow`` on a ``LegacyContext``, ``secaggplus_mod`` on a legacy
client), so this path runs the same client training (:func:`client_round`) and
server bookkeeping (the recorder) as the Message-API path, through a legacy
strategy (:func:`fedsim.aggregation.legacy.create_legacy_strategy`).

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

import numpy as np
import torch
from flwr.app import ArrayRecord, Context
from flwr.client import NumPyClient
from flwr.client.mod import fixedclipping_mod, secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.server import LegacyContext, ServerConfig
from flwr.server.strategy import DifferentialPrivacyClientSideFixedClipping
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
from flwr.serverapp import Grid, ServerApp

from fedsim.aggregation.legacy import (
    ARRAY_KEYS_KEY,
    SERVER_ROUND_KEY,
    create_legacy_strategy,
    decode_fit_config,
)
from fedsim.aggregation.user_dp import zero_safe
from fedsim.privacy import cohort_size
from fedsim.simulation.client_app import aggregation_weight, client_partitions, client_round
from fedsim.simulation.recorder import RunStopped


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


def _largest_weight(specs, *, uniform: bool) -> float:
    """``M``: the largest weight a client of this federation reports (1 when clients count once)."""
    if uniform:
        return 1.0
    return float(
        aggregation_weight(specs, max(len(p) for p in client_partitions(specs.data, specs.partition)))
    )


def run_secagg(
    grid: Grid,
    context: Context,
    *,
    specs,
    recorder,
    initial_arrays: ArrayRecord,
    secagg: SecAggSettings | None = None,
    user_dp: tuple[float, float] | None = None,
) -> None:
    """Run every round of a scenario with SecAgg+ aggregation (a ServerApp's ``main``).

    Pipeline:

    1. create the legacy strategy (FedAvg or FedAvgM) with the recorder's hooks,
       sampling ``max(int(num_clients * fraction_train), 1)`` clients a round;
    2. with ``user_dp``, wrap it in Flower's
       ``DifferentialPrivacyClientSideFixedClipping``: clients clip their update
       (``fixedclipping_mod``), the server adds Gaussian noise of std
       ``noise_multiplier * clipping_norm / cohort`` to the unmasked mean;
    3. run Flower's ``DefaultWorkflow`` with ``SecAggPlusWorkflow`` as its fit
       step: round 0 evaluation, then per round the four SecAgg+ stages (setup,
       share keys, collect masked vectors — where clients train —, unmask), the
       recorder's reply hook, the average, and central evaluation;
    4. end quietly when the recorder raises :class:`RunStopped` before a round.

    A round that yields no aggregate without telling the recorder (SecAgg+
    halts when fewer than ``reconstruction_threshold`` neighbours answer;
    Flower's DP wrapper drops any round with a failed client) is reported to
    the recorder as a round in which every client failed, instead of passing
    silently with the old model.

    The server sees only the sum, but with ``user_dp`` it adds the noise after
    unmasking, so it sees the un-noised mean (central DP, trusted server).
    Flower's noise std assumes a uniform average over the cohort: with
    ``user_dp`` every client counts once (its ``weight`` is 1), and a skipped
    client (weight 0) is left out, as on the Message-API path; the recorder
    accounts the round with the noise it really had.

    Args:
        grid: the ServerApp's grid.
        context: the ServerApp's context.
        specs: :class:`fedsim.simulation.scenario.ScenarioSpecs`.
        recorder: the run's recorder (``configure_round``, ``on_train_replies``,
            ``on_release``, ``attach_user_dp``, ``evaluate``).
        initial_arrays: the initial global model.
        secagg: protocol parameters (default :class:`SecAggSettings`).
        user_dp: ``(noise_multiplier, clipping_norm)`` for user-level DP with
            client-side clipping (noise std over clipping norm ≥ 0; L2 norm of a
            client's model update > 0), or None. The clients must be built with
            the same ``user_dp``.

    Raises:
        ValueError: if fewer than 2 clients are sampled per round (SecAgg+ needs 2),
            or if the scenario asks for user-level DP and ``user_dp`` is None.
    """
    fed = specs.federation
    settings = secagg or SecAggSettings()
    cohort = cohort_size(fed.num_clients, fed.fraction_train)  # 1
    if cohort < 2:
        raise ValueError(f"SecAgg+ needs at least 2 clients per round; this federation samples {cohort}")
    if user_dp is None and specs.privacy.is_user_level:
        raise ValueError(
            "the scenario asks for user-level DP: pass user_dp=(noise_multiplier, clipping_norm)"
        )
    rounds_reported: list[int] = []

    def on_train_replies(replies: list, failed: list) -> None:
        rounds_reported.append(1)
        recorder.on_train_replies(replies, failed)

    strategy = create_legacy_strategy(
        fed.strategy,
        num_clients=fed.num_clients,
        fraction_train=fed.fraction_train,
        initial_arrays=initial_arrays,
        on_train_replies=on_train_replies,
        configure_round=recorder.configure_round,
        evaluate_fn=recorder.evaluate,
        on_release=recorder.on_release,
        **fed.strategy_options(),
    )
    if user_dp is not None:  # 2
        noise_multiplier, clipping_norm = user_dp
        strategy = DifferentialPrivacyClientSideFixedClipping(
            strategy,
            noise_multiplier=noise_multiplier,
            clipping_norm=clipping_norm,
            num_sampled_clients=cohort,
        )
        recorder.attach_user_dp(strategy)  # accounts each round's release
    secagg_step = settings.create_workflow(max_weight=_largest_weight(specs, uniform=user_dp is not None))

    def fit_step(step_grid: Grid, step_context: Context) -> None:
        before = len(rounds_reported)
        secagg_step(step_grid, step_context)
        if len(rounds_reported) == before:  # halted, or dropped by the DP wrapper
            recorder.on_train_replies([], ["SecAgg+ round produced no aggregate (see Flower's log)"])

    workflow = DefaultWorkflow(fit_workflow=fit_step)  # 3
    legacy_context = LegacyContext(context, config=ServerConfig(num_rounds=fed.rounds), strategy=strategy)
    try:
        workflow(grid, legacy_context)
    except RunStopped:  # 4
        pass  # the recorder holds the reason; the run ends after its last full round


def create_secagg_server_app(
    specs,
    *,
    recorder,
    initial_arrays: ArrayRecord,
    secagg: SecAggSettings | None = None,
    user_dp: tuple[float, float] | None = None,
) -> ServerApp:
    """A ServerApp whose ``main`` is :func:`run_secagg` (arguments as there)."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        run_secagg(
            grid,
            context,
            specs=specs,
            recorder=recorder,
            initial_arrays=initial_arrays,
            secagg=secagg,
            user_dp=user_dp,
        )

    return app


class _SecAggClient(NumPyClient):
    """A legacy client that answers ``fit`` with :func:`client_round`."""

    def __init__(self, specs, *, partition_id: int) -> None:
        self.specs = specs
        self.partition_id = partition_id

    def fit(self, parameters, config):
        """Train on the global arrays; return the new arrays, the weight and the metrics."""
        config = decode_fit_config(config)
        keys = config[ARRAY_KEYS_KEY]
        state_dict = {k: torch.from_numpy(np.array(a)) for k, a in zip(keys, parameters, strict=True)}
        new_state, metrics = client_round(
            self.specs,
            partition_id=self.partition_id,
            server_round=int(config[SERVER_ROUND_KEY]),
            state_dict=state_dict,
            config=config,
        )
        return [new_state[k].numpy() for k in keys], int(metrics["weight"]), metrics


def create_secagg_client_app(specs, *, user_dp: tuple[float, float] | None = None) -> ClientApp:
    """Build the legacy ClientApp for SecAgg+ runs.

    Each client trains with :func:`client_round` in the "collect masked
    vectors" stage and replies with its ``weight`` as ``FitRes.num_examples`` and
    its metrics as ``FitRes.metrics``; ``secaggplus_mod`` quantises and masks the
    weighted arrays. With ``user_dp`` the mods are ``[secaggplus_mod,
    zero_safe(fixedclipping_mod)]``: SecAgg+ outermost (only its collect stage
    carries a model, and it must mask the clipped update), clipping innermost.

    Args:
        specs: :class:`fedsim.simulation.scenario.ScenarioSpecs`.
        user_dp: as given to :func:`run_secagg` (only whether it is None matters
            here: the clipping norm comes from the server's fit config).
    """

    def client_fn(context: Context):
        return _SecAggClient(
            specs,
            partition_id=int(context.node_config["partition-id"]),
        ).to_client()

    mods = [secaggplus_mod] if user_dp is None else [secaggplus_mod, zero_safe(fixedclipping_mod)]
    return ClientApp(client_fn=client_fn, mods=mods)
