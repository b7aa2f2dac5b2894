import torch
from torch import nn

from fedsim.client import TrainSpec, create_data_loader, create_optimizer, train
from fedsim.data import DataSpec, load_dataset
from fedsim.models import ModelSpec, build_model
from fedsim.privacy import PrivacyEvent, PrivacyLedger, make_private, poisson_sample_rate, steps_per_epoch


def test_dp_round_on_digits_reports_opacus_sample_rate_and_steps():
    # Arrange
    train_set, _ = load_dataset(DataSpec("digits"))
    shard = train_set.subset(torch.arange(300).numpy())
    model = build_model(ModelSpec("cnn"), input_shape=shard.input_shape, num_classes=10, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loader = create_data_loader(shard, batch_size=32, shuffle=True, seed=1)
    optimizer = create_optimizer(model, TrainSpec(1, 32, 0.5, 0.0))
    # Act
    private = make_private(
        module=model,
        optimizer=optimizer,
        criterion=nn.CrossEntropyLoss(),
        data_loader=loader,
        noise_multiplier=1.0,
        max_grad_norm=1.0,
        grad_sample_mode="ghost",
    )
    result = train(
        private.module,
        private.data_loader,
        optimizer=private.optimizer,
        criterion=private.criterion,
        epochs=1,
        device=torch.device("cpu"),
    )
    # Assert: Opacus's q is 1/len(loader) = 1/ceil(300/32), one epoch = int(1/q) steps
    assert private.sample_rate == poisson_sample_rate(300, 32) == 0.1
    assert result.steps == steps_per_epoch(private.sample_rate) == 10
    # The unwrapped model's keys carry no "_module." prefix, and its weights moved.
    state = model.state_dict()
    assert set(state) == set(before)
    assert any(not torch.equal(state[k], before[k]) for k in state)
    ledger = PrivacyLedger(delta=1e-5)
    ledger.record(0, server_round=1, event=PrivacyEvent(1.0, private.sample_rate, result.steps))
    assert 0 < ledger.epsilon(0) < 10
