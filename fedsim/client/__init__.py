"""Client-side training and evaluation: plain PyTorch loops, unaware of DP."""

from fedsim.client.evaluate import EvalMetrics, EvaluationSpec, evaluate
from fedsim.client.proximal import attach_proximal_term
from fedsim.client.train import TrainMetrics, TrainSpec, create_data_loader, create_optimizer, train

__all__ = [
    "EvaluationSpec",
    "EvalMetrics",
    "TrainMetrics",
    "TrainSpec",
    "attach_proximal_term",
    "create_data_loader",
    "create_optimizer",
    "evaluate",
    "train",
]
