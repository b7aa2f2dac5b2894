"""DP-ready layers that stand in for PyTorch layers whose per-sample gradients Opacus cannot compute fast."""

from fedsim.privacy.layers.lstm import FastDPLSTM, LSTMLayer

__all__ = ["FastDPLSTM", "LSTMLayer"]
