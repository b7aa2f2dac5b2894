"""FedProx's proximal term enters DP-SGD after clipping and noise: never clipped, in any grad-sample mode."""

import numpy as np
import pytest
import torch
from torch import nn

from fedsim.client import TrainSpec, attach_proximal_term, create_data_loader, create_optimizer, train
from fedsim.data import load_dataset
from fedsim.models import ModelSpec, build_model
from fedsim.privacy import make_private
from fedsim.privacy.engine import GRAD_SAMPLE_MODES
from tests.fixtures.specs import data_spec

LR, MU, SHIFT, TINY_CLIP = 0.5, 0.8, 0.25, 1e-9


@pytest.mark.parametrize("mode", GRAD_SAMPLE_MODES)
def test_the_proximal_step_is_not_clipped_by_dp_sgd(mode):
    # Arrange: the digits CNN on 300 real examples; its weights moved SHIFT away from the global model,
    # DP-SGD without noise and with per-example gradients clipped to almost nothing
    train_set, _ = load_dataset(data_spec("digits"))
    shard = train_set.subset(np.arange(300))
    model = build_model(
        ModelSpec("cnn", activation="relu"), input_shape=shard.input_shape, num_classes=10, seed=0
    )
    loader = create_data_loader(shard, batch_size=32, shuffle=True, seed=1)
    optimizer = create_optimizer(model, TrainSpec(1, 32, LR, 0.0, local_steps=None))
    attach_proximal_term(optimizer, model, MU)  # w_global: the weights now
    with torch.no_grad():
        for p in model.parameters():
            p.add_(SHIFT)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    private = make_private(
        module=model,
        optimizer=optimizer,
        criterion=nn.CrossEntropyLoss(),
        data_loader=loader,
        noise_multiplier=0.0,
        max_grad_norm=TINY_CLIP,
        grad_sample_mode=mode,
    )
    # Act: one step
    with private:
        train(private.module, private.data_loader, optimizer=private.optimizer, criterion=private.criterion,
              epochs=1, device="cpu", max_steps=1)  # fmt: skip
    # Assert: every weight moved by lr * mu * SHIFT towards the global model (clipped, the term would vanish)
    for name, p in model.named_parameters():
        step = (before[name] - p.detach()).reshape(-1)
        assert torch.allclose(step, torch.full_like(step, LR * MU * SHIFT), atol=1e-6), name
