"""The seed's RNN: two stacked LSTM(64) layers, then a dense head on the last step.

For text the input is a window of character indices, embedded first (8
dimensions, as in LEAF's Shakespeare model; Caldas et al. 2018,
https://arxiv.org/abs/1812.01097). For images each row is one time step: a
``(C, H, W)`` image is read as ``H`` steps of ``C * W`` features (28 steps of 28
for Fashion-MNIST), so the CNN and the RNN can be compared on the same data.

The model uses PyTorch's ``nn.LSTM``. Under DP-SGD the privacy layer swaps it
for Opacus's ``DPLSTM`` (same weights and parameter names), whose per-sample
gradients Opacus can compute; evaluation keeps the fast ``nn.LSTM``.
"""

from __future__ import annotations

import torch
from torch import nn

HIDDEN_SIZE = 64
"""Units per LSTM layer (the seed's LSTM(64))."""

EMBEDDING_DIM = 8
"""Character embedding size for text (LEAF's Shakespeare LSTM)."""


class LSTMClassifier(nn.Module):
    """[Embedding(vocab, 8) →] LSTM(64) → LSTM(64) → Dense(num_classes) on the last step.

    The first LSTM layer returns its whole sequence to the second (``num_layers=2``).

    Args:
        input_shape: ``(T,)`` for text (character indices) or ``(C, H, W)`` for images.
        num_classes: number of output logits (≥ 2).
        vocab_size: number of distinct input characters; required for text, None for images.

    Raises:
        ValueError: if the input shape and ``vocab_size`` do not describe text or images.

    Example:
        >>> LSTMClassifier((80,), 62, vocab_size=62)(torch.zeros(3, 80, dtype=torch.long)).shape
        torch.Size([3, 62])
        >>> LSTMClassifier((1, 28, 28), 10)(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self, input_shape: tuple[int, ...], num_classes: int, *, vocab_size: int | None = None
    ) -> None:
        super().__init__()
        if vocab_size is not None:
            if len(input_shape) != 1:
                raise ValueError(f"text input must be (T,) character indices, got shape {input_shape}")
            self.embedding: nn.Module | None = nn.Embedding(vocab_size, EMBEDDING_DIM)
            features = EMBEDDING_DIM
        else:
            if len(input_shape) != 3:
                raise ValueError(f"image input must be (C, H, W), got shape {input_shape}")
            self.embedding = None
            features = input_shape[0] * input_shape[2]
        self.lstm = nn.LSTM(features, HIDDEN_SIZE, num_layers=2, batch_first=True)
        self.head = nn.Linear(HIDDEN_SIZE, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, T)`` indices or ``(B, C, H, W)`` images to logits ``(B, num_classes)``."""
        if self.embedding is not None:
            steps = self.embedding(x.long())  # (B, T, 8)
        else:
            b, c, h, w = x.shape
            steps = x.permute(0, 2, 1, 3).reshape(b, h, c * w)  # (B, H, C*W): one row per step
        out, _ = self.lstm(steps)  # (B, T, 64)
        return self.head(out[:, -1])  # (B, num_classes)
