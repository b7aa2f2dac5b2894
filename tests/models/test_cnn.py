import pytest
import torch
from opacus.validators import ModuleValidator

from fedsim.models import CNN, ModelSpec, build_model


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 8, 8), (3, 32, 32)])
def test_output_shape_and_opacus_compatible(shape):
    model = build_model(ModelSpec("cnn", activation="relu"), input_shape=shape, num_classes=10, seed=0)
    assert model(torch.zeros(4, *shape)).shape == (4, 10)
    assert ModuleValidator.validate(model, strict=False) == []


def test_fashion_mnist_layer_sizes():
    # Conv 32@3x3 -> 26 -> pool 13 -> Conv 64@3x3 -> 11 -> pool 5: 64*5*5 = 1600 features into dense 64
    model = CNN((1, 28, 28), 10)
    assert model.classifier[0].in_features == 1600 and model.classifier[0].out_features == 64
    assert sum(p.numel() for p in model.parameters()) == 320 + 18496 + 102464 + 650


def test_too_small_input():
    with pytest.raises(ValueError, match="at least 4x4"):
        CNN((1, 3, 3), 10)


def test_unknown_model():
    with pytest.raises(ValueError, match="unknown model 'vit'"):
        ModelSpec("vit", activation="relu")


def test_the_activation_is_a_model_option():
    from torch import nn

    tanh = build_model(ModelSpec("cnn", activation="tanh"), input_shape=(1, 28, 28), num_classes=10, seed=0)
    relu = build_model(ModelSpec("cnn", activation="relu"), input_shape=(1, 28, 28), num_classes=10, seed=0)
    assert sum(isinstance(m, nn.Tanh) for m in tanh.modules()) == 3
    assert not any(isinstance(m, nn.ReLU) for m in tanh.modules())
    # same weights, another function
    assert all(torch.equal(p, q) for p, q in zip(tanh.parameters(), relu.parameters(), strict=True))
    x = torch.randn(2, 1, 28, 28)
    assert not torch.allclose(tanh(x), relu(x))
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        ModelSpec("cnn", activation="gelu")
    with pytest.raises(ValueError, match="applies to the CNN"):
        build_model(ModelSpec("lstm", activation="tanh"), input_shape=(1, 28, 28), num_classes=10)
