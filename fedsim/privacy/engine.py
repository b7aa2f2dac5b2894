"""Opacus DP-SGD, wrapped so that the training loop stays plain PyTorch."""

from __future__ import annotations

import contextlib
import copy
import warnings
from dataclasses import dataclass

import torch
from opacus import PrivacyEngine
from opacus.grad_sample.gsm_base import AbstractGradSampleModule
from opacus.validators import ModuleValidator
from opacus.validators.errors import UnsupportedModuleError
from torch import nn
from torch.utils.data import DataLoader

from fedsim.privacy.layers import FastDPLSTM

GRAD_SAMPLE_MODES = ("hooks", "functorch", "ghost")
"""Opacus per-sample gradient engines (``make_private(grad_sample_mode=...)``)."""

DP_LSTM_LAYERS = ("fast", "opacus")
"""What stands in for ``nn.LSTM`` under DP-SGD: fedsim's :class:`~fedsim.privacy.layers.FastDPLSTM`
(``fast``) or Opacus's ``DPLSTM`` (``opacus``, one module call per time step)."""


@dataclass(frozen=True)
class DPSGDSpec:
    """How clients run Opacus DP-SGD (the same for every client and round; not a budget).

    Args:
        grad_sample_mode: Opacus per-sample gradient engine, one of
            :data:`GRAD_SAMPLE_MODES`; ``ghost`` (ghost clipping, Li et al. 2021,
            https://arxiv.org/abs/2110.05679) is the fastest for the CNN.
        secure_mode: Opacus's cryptographically secure noise (needs ``torchcsprng``;
            see :func:`check_secure_mode`); the server's cohort sampling and
            DP-FedAvg noise are then not seeded either.
        dp_lstm: what replaces ``nn.LSTM`` under DP-SGD, one of :data:`DP_LSTM_LAYERS`
            (see :func:`make_trainable`).

    Raises:
        ValueError: for an unknown ``grad_sample_mode`` or ``dp_lstm``.
    """

    grad_sample_mode: str
    secure_mode: bool
    dp_lstm: str

    def __post_init__(self) -> None:
        if self.grad_sample_mode not in GRAD_SAMPLE_MODES:
            raise ValueError(
                f"grad_sample_mode must be one of {GRAD_SAMPLE_MODES}, got {self.grad_sample_mode!r}"
            )
        if self.dp_lstm not in DP_LSTM_LAYERS:
            raise ValueError(f"dp_lstm must be one of {DP_LSTM_LAYERS}, got {self.dp_lstm!r}")


@dataclass(frozen=True)
class PrivateTraining:
    """Objects that act like their non-private counterparts, from Opacus.

    Attributes:
        module: the model wrapped to compute (or bound) per-sample gradients;
            its parameters are the original model's tensors.
        optimizer: clips per-sample gradients to ``max_grad_norm`` and adds noise.
        criterion: the loss; under ghost clipping a wrapper that runs the double
            backward pass, else the original criterion.
        data_loader: Poisson-sampling loader (``DPDataLoader``).
        sample_rate: q of the Poisson sampler, for the privacy ledger.
    """

    module: nn.Module
    optimizer: torch.optim.Optimizer
    criterion: nn.Module
    data_loader: DataLoader
    sample_rate: float

    def close(self) -> None:
        """Detach Opacus from the model, so that the round's objects go with their last reference.

        After this the wrapped module computes no per-sample gradients; the original
        model keeps its trained weights. Also ``with make_private(...) as private:``.
        See :func:`_release`.
        """
        _release(self.module, self.optimizer)

    def __enter__(self) -> PrivateTraining:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def make_trainable(module: nn.Module, dp_lstm: str = "fast") -> nn.Module:
    """Return a model Opacus can compute per-sample gradients for.

    A model the Opacus validator accepts is returned as is. Otherwise a copy is
    returned in which each ``nn.LSTM`` (whose fused kernel hides the per-step
    activations per-sample gradients need) holds the same weights in a DP-ready
    layer:

    * ``fast``: :class:`fedsim.privacy.layers.FastDPLSTM`, the whole sequence's
      input projection in one product and per-sample gradients by batched
      products (a DP-SGD step about half of ``DPLSTM``'s on a CPU; ``bench/run.py``);
    * ``opacus``: Opacus's ``DPLSTM``, through ``ModuleValidator.fix``.

    Any other layer Opacus cannot train is replaced by ``ModuleValidator.fix``.
    Create the optimiser over the returned model's parameters.

    Args:
        module: the plain model.
        dp_lstm: one of :data:`DP_LSTM_LAYERS`.

    Returns:
        ``module`` itself, or a fixed copy whose ``state_dict`` holds every key of
        the original (see :func:`plain_state_dict`).

    Raises:
        ValueError: if the model has layers Opacus can neither train nor replace,
            or for an unknown ``dp_lstm``.
    """
    if dp_lstm not in DP_LSTM_LAYERS:
        raise ValueError(f"dp_lstm must be one of {DP_LSTM_LAYERS}, got {dp_lstm!r}")
    if not ModuleValidator.validate(module, strict=False):
        return module
    if dp_lstm == "fast":
        module = _with_fast_lstm(module)
        if not ModuleValidator.validate(module, strict=False):
            return module
    try:
        return ModuleValidator.fix_and_validate(module)
    except UnsupportedModuleError as err:
        raise ValueError(f"model is not trainable under Opacus: {err}") from err


def _with_fast_lstm(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with every ``nn.LSTM`` replaced by a :class:`FastDPLSTM` of the same weights."""
    lstms = [name for name, m in module.named_modules() if isinstance(m, nn.LSTM)]
    if not lstms:
        return module
    module = copy.deepcopy(module)
    for name in lstms:
        parent_name, _, child = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, child, FastDPLSTM.from_lstm(getattr(parent, child)))
    return module


def plain_state_dict(module: nn.Module, keys) -> dict[str, torch.Tensor]:
    """The weights of a (possibly fixed) model under the plain model's names.

    ``DPLSTM`` lists each weight twice in its ``state_dict`` (as ``weight_ih_l0``
    and as ``l0.ih.weight``); this keeps only the names in ``keys``, those of the
    model before :func:`make_trainable` (``FastDPLSTM`` already uses them).

    Args:
        module: the trained model (unwrapped from Opacus's ``GradSampleModule``).
        keys: the plain model's ``state_dict`` keys.

    Raises:
        KeyError: if a key is missing from ``module``'s ``state_dict``.
    """
    weights = module.state_dict()
    return {key: weights[key] for key in keys}


def check_secure_mode() -> None:
    """Fail early when Opacus's ``secure_mode`` cannot run here.

    Opacus's secure mode draws noise from ``torchcsprng``
    (https://github.com/pytorch/csprng), whose last release targets PyTorch 1.x;
    it is not on the package index fedsim installs from.

    Raises:
        ImportError: naming the missing package and what to do instead.
    """
    try:
        import torchcsprng  # noqa: F401
    except ImportError:
        raise ImportError(
            "privacy.secure-mode = true needs the torchcsprng package (Opacus's secure noise "
            "generator), which is not installed and has no build for this PyTorch; "
            "set secure-mode = false (noise from PyTorch's default generator: fine for simulation, "
            "not for deployment)"
        ) from None


def make_private(
    *,
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    criterion: nn.Module,
    data_loader: DataLoader,
    noise_multiplier: float,
    max_grad_norm: float,
    grad_sample_mode: str = "ghost",
    noise_generator: torch.Generator | None = None,
    secure_mode: bool = False,
) -> PrivateTraining:
    """Turn a model, optimiser, loss and loader into their DP-SGD counterparts.

    A thin wrapper over ``opacus.PrivacyEngine.make_private`` with Poisson
    sampling and flat clipping. The engine's own accountant is not used: a fresh
    engine per round knows only that round, so the round's mechanism
    parameters go to :class:`fedsim.privacy.PrivacyLedger` instead.

    Args:
        module: the model; must pass ``opacus.validators.ModuleValidator``
            (pass it through :func:`make_trainable` first).
        optimizer: an optimiser over ``module``'s parameters.
        criterion: the loss, with mean reduction.
        data_loader: a loader over the client's data set; its generator (if any)
            seeds Poisson sampling.
        noise_multiplier: σ (≥ 0).
        max_grad_norm: per-sample clipping bound C (> 0).
        grad_sample_mode: ``ghost``, ``hooks`` or ``functorch``.
        noise_generator: seeds the Gaussian noise (None: Opacus's default RNG).
            Ignored under ``secure_mode``, whose noise cannot be seeded.
        secure_mode: draw noise and sampling from Opacus's cryptographically
            secure generator (``torchcsprng``; see :func:`check_secure_mode`).

    Raises:
        ValueError: if Opacus's validator rejects the model (message lists why).
        ImportError: under ``secure_mode`` without ``torchcsprng``.
    """
    errors = ModuleValidator.validate(module, strict=False)
    if errors:
        raise ValueError(f"model is not trainable under Opacus: {errors}")
    with _no_rng_warning():
        engine = PrivacyEngine(accountant="rdp", secure_mode=secure_mode)
    with _no_rng_warning():
        result = engine.make_private(
            module=module,
            optimizer=optimizer,
            criterion=criterion,
            data_loader=data_loader,
            noise_multiplier=noise_multiplier,
            max_grad_norm=max_grad_norm,
            poisson_sampling=True,
            grad_sample_mode=grad_sample_mode,
            noise_generator=None if secure_mode else noise_generator,
        )
    return _as_private_training(result, criterion)


@contextlib.contextmanager
def _no_rng_warning():
    """Silence Opacus's warning that its default RNG is not cryptographically secure."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def _as_private_training(result: tuple, criterion: nn.Module) -> PrivateTraining:
    """Opacus's ``make_private`` result (with a criterion only under ghost clipping) as one object."""
    if len(result) == 4:
        private_module, private_optimizer, private_criterion, private_loader = result
    else:
        private_module, private_optimizer, private_loader = result
        private_criterion = criterion
    return PrivateTraining(
        module=private_module,
        optimizer=private_optimizer,
        criterion=private_criterion,
        data_loader=private_loader,
        sample_rate=float(private_loader.sample_rate),
    )


def _release(module: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Undo what Opacus attached to a model and its parameters.

    Opacus's wrapper (``GradSampleModule``) registers its own bound methods as forward and
    backward hooks on each layer it wraps, and under ``functorch`` a closure over the layer
    as ``layer.ft_compute_sample_grad``: wrapper -> model -> layer -> hook -> wrapper is a
    reference cycle, which only Python's cyclic garbage collector frees, at a time of its
    choosing, together with everything it reaches (model, optimiser, loader, per-sample
    gradients). ``to_standard_module`` removes the hooks and those closures and deletes
    ``grad_sample`` and Opacus's other attributes from the parameters; the optimiser's
    clipped sums (``summed_grad``) go too, and so does an ``add_noise`` fedsim set on the
    optimiser itself (:func:`fedsim.privacy.canaries.attach_dirac_canaries`), which refers to it.
    """
    optimizer.__dict__.pop("add_noise", None)
    if isinstance(module, AbstractGradSampleModule):
        module.to_standard_module()
    for group in optimizer.param_groups:
        for p in group["params"]:
            if hasattr(p, "summed_grad"):
                del p.summed_grad
