"""The EMA callback's update (one fused lerp, no host sync) against torch's own ``AveragedModel`` EMA, which
Lightning's ``EMAWeightAveraging`` runs: the same averaged weights and buffers, update by update."""

from __future__ import annotations

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_avg_fn

from ganlab.callbacks.ema import EMA
from ganlab.networks.dcgan import Discriminator


def test_the_fused_update_averages_weights_and_follows_buffers_as_averaged_model_does():
    torch.manual_seed(0)
    model = Discriminator(image_shape=(1, 28, 28), base_channels=8, spectral_norm=True)  # buffers: SN's u and v
    ema = EMA(decay=0.9)
    ema._average_model = AveragedModel(model, use_buffers=False)
    reference = AveragedModel(model, use_buffers=False, avg_fn=get_ema_avg_fn(0.9))
    for step in range(1, 5):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model(torch.randn(4, 1, 28, 28))  # a training forward: spectral norm's power step moves u and v
        ema._update_average(model)
        ema._latest_update_step = step
        reference.update_parameters(model)
        ours, theirs = ema._average_model.module.state_dict(), reference.module.state_dict()
        for name in theirs:
            assert torch.allclose(ours[name], theirs[name], atol=1e-6), (step, name)
    assert int(ema._average_model.n_averaged) == int(reference.n_averaged) == 4
    assert any("_u" in name for name in theirs)  # the buffers were compared too
