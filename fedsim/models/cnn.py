"""The classic small image CNN: Conv 32@3x3, pool, Conv 64@3x3, pool, dense 64, classes.

It is the Keras "simple MNIST convnet" shape, with ReLU activations (or tanh,
which Papernot et al. 2021, https://arxiv.org/abs/2007.14191, found better under
DP-SGD: bounded activations keep the clipped gradients informative) and max
pooling. It uses no batch normalisation, so Opacus's validator accepts it as is.
"""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}
"""The CNN's hidden activations, by ``model.activation`` name."""


class CNN(nn.Module):
    """Conv(32, 3x3) → act → MaxPool(2) → Conv(64, 3x3) → act → MaxPool(2) → Dense(64) → act → Dense.

    Inputs smaller than 16x16 (scikit-learn digits are 8x8) would shrink below one
    pixel with unpadded convolutions, so those use ``padding=1`` ("same"); larger
    inputs (Fashion-MNIST 28x28) use the classic unpadded ("valid") convolutions.

    Args:
        input_shape: ``(C, H, W)`` of one example.
        num_classes: number of output logits (≥ 2).
        activation: the hidden activation, a key of :data:`ACTIVATIONS` (ReLU by default).

    Raises:
        ValueError: if the input is not ``(C, H, W)`` or too small (below 4x4).

    Example:
        >>> CNN((1, 28, 28), 10)(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, activation: str = "relu") -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"CNN needs (C, H, W) inputs, got shape {input_shape}")
        channels, height, width = input_shape
        if min(height, width) < 4:
            raise ValueError(f"CNN needs inputs of at least 4x4, got {height}x{width}")
        padding = 1 if min(height, width) < 16 else 0
        self.features = nn.Sequential(
            nn.Conv2d(channels, 32, kernel_size=3, padding=padding),
            ACTIVATIONS[activation](),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, kernel_size=3, padding=padding),
            ACTIVATIONS[activation](),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.features(torch.zeros(1, *input_shape)).shape[1]
        self.classifier = nn.Sequential(
            nn.Linear(flat, 64),
            ACTIVATIONS[activation](),
            nn.Linear(64, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map images ``(B, C, H, W)`` to logits ``(B, num_classes)``."""
        return self.classifier(self.features(x))
