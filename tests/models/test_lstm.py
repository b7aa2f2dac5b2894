import torch
from opacus.layers import DPLSTM

from fedsim.models import ModelSpec, build_model
from fedsim.privacy import make_trainable, plain_state_dict


def test_text_and_image_shapes():
    text = build_model(
        ModelSpec("lstm", activation="relu"), input_shape=(80,), num_classes=62, vocab_size=62, seed=0
    )
    assert text(torch.randint(0, 62, (4, 80))).shape == (4, 62)
    image = build_model(ModelSpec("lstm", activation="relu"), input_shape=(1, 28, 28), num_classes=10, seed=0)
    assert image(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    # two stacked LSTM(64) layers, then one dense head
    assert image.lstm.num_layers == 2 and image.lstm.hidden_size == 64 and image.lstm.input_size == 28
    assert image.head.in_features == 64


def test_dplstm_swap_keeps_weights_names_and_outputs():
    # Arrange
    model = build_model(
        ModelSpec("lstm", activation="relu"), input_shape=(80,), num_classes=62, vocab_size=62, seed=0
    )
    x = torch.randint(0, 62, (5, 80))
    # Act
    trainable = make_trainable(model, "opacus")
    # Assert: Opacus's DPLSTM replaces nn.LSTM and computes the same function
    assert isinstance(trainable.lstm, DPLSTM)
    torch.testing.assert_close(trainable(x), model(x), atol=1e-5, rtol=1e-4)
    keys = model.state_dict().keys()
    state = plain_state_dict(trainable, keys)
    assert list(state) == list(keys)
    fresh = build_model(
        ModelSpec("lstm", activation="relu"), input_shape=(80,), num_classes=62, vocab_size=62, seed=1
    )
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh(x), model(x))


def test_cnn_is_left_alone():
    cnn = build_model(ModelSpec("cnn", activation="relu"), input_shape=(1, 8, 8), num_classes=10, seed=0)
    assert make_trainable(cnn) is cnn


def test_cnn_refuses_text():
    import pytest

    with pytest.raises(ValueError, match="for text use model 'lstm'"):
        build_model(ModelSpec("cnn", activation="relu"), input_shape=(80,), num_classes=62, vocab_size=62)
