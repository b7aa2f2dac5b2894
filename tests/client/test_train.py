import torch
from torch import nn

from fedsim.client import TrainSpec, create_data_loader, create_optimizer, evaluate, train
from fedsim.data import load_dataset
from fedsim.models import ModelSpec, build_model
from tests.fixtures.specs import data_spec


def test_plain_training_learns_digits():
    # Arrange
    train_set, test_set = load_dataset(data_spec("digits"))
    model = build_model(
        ModelSpec("cnn", activation="relu"), input_shape=train_set.input_shape, num_classes=10, seed=0
    )
    spec = TrainSpec(local_epochs=10, batch_size=32, learning_rate=0.05, momentum=0.9, local_steps=None)
    loader = create_data_loader(train_set, batch_size=spec.batch_size, shuffle=True, seed=0)
    device = torch.device("cpu")
    before = evaluate(model, test_set, device=device)
    # Act
    result = train(
        model,
        loader,
        optimizer=create_optimizer(model, spec),
        criterion=nn.CrossEntropyLoss(),
        epochs=10,
        device=device,
    )
    after = evaluate(model, test_set, device=device)
    # Assert: from chance to well above it on the held-out split
    assert before.accuracy < 0.2
    assert after.accuracy > 0.9
    assert result.steps == 10 * 43 and result.num_examples == 1347


def test_max_steps_stops_inside_an_epoch():
    train_set, _ = load_dataset(data_spec("digits"))
    model = build_model(
        ModelSpec("cnn", activation="relu"), input_shape=train_set.input_shape, num_classes=10, seed=0
    )
    loader = create_data_loader(train_set, batch_size=32, shuffle=False)
    spec = TrainSpec(local_epochs=2, batch_size=32, learning_rate=0.1, momentum=0.0, local_steps=7)
    result = train(
        model,
        loader,
        optimizer=create_optimizer(model, spec),
        criterion=nn.CrossEntropyLoss(),
        epochs=2,
        device=torch.device("cpu"),
        max_steps=spec.local_steps,
    )
    assert result.steps == 7
    assert spec.steps_per_round(43) == 7
