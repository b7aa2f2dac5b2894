"""Models, built by name: ``build_model(spec, input_shape, num_classes)``."""

from fedsim.models.cnn import CNN
from fedsim.models.registry import ModelSpec, available_models, build_model

__all__ = ["CNN", "ModelSpec", "available_models", "build_model"]
