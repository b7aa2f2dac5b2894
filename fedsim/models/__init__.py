"""Models, built by name: ``build_model(spec, input_shape, num_classes)``."""

from fedsim.models.cnn import ACTIVATIONS, CNN
from fedsim.models.lstm import LSTMClassifier
from fedsim.models.registry import MODEL_INPUTS, ModelSpec, available_models, build_model

__all__ = [
    "ACTIVATIONS",
    "CNN",
    "LSTMClassifier",
    "MODEL_INPUTS",
    "ModelSpec",
    "available_models",
    "build_model",
]
