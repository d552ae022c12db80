"""The EMA callback's update (one fused lerp, no host sync) against torch's own ``AveragedModel`` EMA, which
Lightning's ``EMAWeightAveraging`` runs: the same averaged weights and buffers, update by update."""

from __future__ import annotations

import pytest
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
        ema._update_average(model, updates_done=step)
        ema._latest_update_step = step
        reference.update_parameters(model)
        ours, theirs = ema._average_model.module.state_dict(), reference.module.state_dict()
        for name in theirs:
            assert torch.allclose(ours[name], theirs[name], atol=1e-6), (step, name)
    assert int(ema._average_model.n_averaged) == int(reference.n_averaged) == 4
    assert any("_u" in name for name in theirs)  # the buffers were compared too


def test_the_half_life_rampup_shortens_the_average_early_and_reaches_decay_late():
    ema = EMA(decay=0.999, half_life_rampup=0.05)
    assert EMA(decay=0.999).decay_at(3000) == 0.999  # no ramp-up: decay from the first update
    assert ema.decay_at(3000) == pytest.approx(0.5 ** (1 / 150))  # half-life: 5% of 3,000 updates
    assert ema.decay_at(3000) < ema.decay_at(6000) < 0.999
    assert ema.decay_at(100_000) == 0.999  # 0.999's half-life (693 updates) is shorter than 5,000

    # The averaged weights follow the schedule update by update: avg <- d_t * avg + (1 - d_t) * weights.
    model = torch.nn.Linear(3, 2)
    ema = EMA(decay=0.9, half_life_rampup=0.5)
    ema._average_model = AveragedModel(model, use_buffers=False)
    expected = [p.detach().clone() for p in model.parameters()]
    for step in range(1, 8):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        ema._update_average(model, updates_done=step)
        decay = 0.0 if step == 1 else min(0.9, 0.5 ** (1 / (0.5 * step)))
        expected = [decay * e + (1 - decay) * p.detach() for e, p in zip(expected, model.parameters())]
        ema._latest_update_step = step
        for ours, theirs in zip(ema._average_model.module.parameters(), expected):
            assert torch.allclose(ours, theirs, atol=1e-6), step


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"decay": 1.0}, "callbacks.ema.decay=1.0 is outside"),
        ({"half_life_rampup": 0.0}, "callbacks.ema.half_life_rampup=0.0 must be positive"),
    ],
)
def test_bad_ema_settings_are_one_line_errors_that_name_the_key(kwargs, message):
    with pytest.raises(ValueError, match=f"^{message}"):
        EMA(**kwargs)
