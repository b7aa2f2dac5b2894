"""Model registry: choose an architecture by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from fedsim.models.cnn import ACTIVATIONS, CNN
from fedsim.models.lstm import LSTMClassifier


def _cnn(
    spec: ModelSpec, input_shape: tuple[int, ...], num_classes: int, vocab_size: int | None
) -> nn.Module:
    if vocab_size is not None:
        raise ValueError("the CNN reads images; for text use model 'lstm'")
    return CNN(input_shape, num_classes, activation=spec.activation)


def _lstm(
    spec: ModelSpec, input_shape: tuple[int, ...], num_classes: int, vocab_size: int | None
) -> nn.Module:
    if spec.activation != "relu":
        raise ValueError(
            f"model.activation = {spec.activation!r} applies to the CNN; the LSTM's gates are fixed"
        )
    return LSTMClassifier(input_shape, num_classes, vocab_size=vocab_size)


_MODELS: dict[str, Callable[[ModelSpec, tuple[int, ...], int, int | None], nn.Module]] = {
    "cnn": _cnn,
    "lstm": _lstm,
}

MODEL_INPUTS: dict[str, frozenset[str]] = {"cnn": frozenset({"image"}), "lstm": frozenset({"image", "text"})}
"""The kinds of input (``image``, ``text``) each model reads."""


def available_models() -> list[str]:
    """Names accepted by :func:`build_model`."""
    return sorted(_MODELS)


@dataclass(frozen=True)
class ModelSpec:
    """Which model clients train.

    Args:
        name: registry name, one of :func:`available_models`.
        activation: the CNN's hidden activation, one of :data:`fedsim.models.cnn.ACTIVATIONS`
            (``tanh``: Papernot et al. 2021, https://arxiv.org/abs/2007.14191); the LSTM takes ``relu``
            only (its gates' activations are fixed).

    Raises:
        ValueError: for an unknown name or activation.
    """

    name: str
    activation: str

    def __post_init__(self) -> None:
        if self.name not in _MODELS:
            raise ValueError(f"unknown model {self.name!r}; choose one of {available_models()}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; choose one of {sorted(ACTIVATIONS)}")


def build_model(
    spec: ModelSpec,
    *,
    input_shape: tuple[int, ...],
    num_classes: int,
    vocab_size: int | None = None,
    seed: int | None = None,
) -> nn.Module:
    """Build a freshly initialised model.

    Args:
        spec: which model.
        input_shape: shape of one example, e.g. ``(1, 28, 28)``.
        num_classes: number of classes.
        vocab_size: for text, the number of distinct input characters (inputs are
            ``(T,)`` indices); None for images.
        seed: if given, initialise weights from this seed without touching the
            caller's global torch RNG state.

    Returns:
        An ``nn.Module`` on the CPU mapping ``(B, *input_shape)`` to ``(B, num_classes)``.

    Raises:
        ValueError: if the model cannot read these inputs (e.g. the CNN on text).

    Example:
        >>> a = build_model(ModelSpec("cnn", "relu"), input_shape=(1, 8, 8), num_classes=10, seed=0)
        >>> b = build_model(ModelSpec("cnn", "relu"), input_shape=(1, 8, 8), num_classes=10, seed=0)
        >>> all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
        True
    """
    factory = _MODELS[spec.name]
    if seed is None:
        return factory(spec, input_shape, num_classes, vocab_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory(spec, input_shape, num_classes, vocab_size)
