"""Each objective is finite, has gradients, and is minimized where its player wins."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganlab.losses import (
    Hinge,
    LeastSquaresGAN,
    MinimaxGAN,
    NonSaturatingGAN,
    RelativisticPairing,
    WassersteinGP,
    gradient_penalty,
)

LOSSES = [MinimaxGAN(), NonSaturatingGAN(), LeastSquaresGAN(), WassersteinGP(), Hinge()]
IDS = [type(loss).__name__ for loss in LOSSES]


def logits(*values: float) -> torch.Tensor:
    return torch.tensor(values, requires_grad=True)


@pytest.mark.parametrize("loss", LOSSES, ids=IDS)
def test_finite_with_gradients_even_for_huge_logits(loss):
    real, fake = logits(-200.0, 0.0, 200.0), logits(200.0, 0.0, -200.0)
    d_loss, g_loss = loss.d_loss(real, fake), loss.g_loss(fake)
    assert torch.isfinite(d_loss) and torch.isfinite(g_loss)
    d_grad_real, d_grad_fake = torch.autograd.grad(d_loss, [real, fake], retain_graph=True)
    (g_grad,) = torch.autograd.grad(g_loss, fake)
    for grad in (d_grad_real, d_grad_fake, g_grad):
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0


# Where each player wins: D scores real high and fake low; G makes D score fakes high.
D_WINS = {"real": 8.0, "fake": -8.0}
G_WINS = 8.0


@pytest.mark.parametrize(
    "loss", [MinimaxGAN(), NonSaturatingGAN(), Hinge(), WassersteinGP()], ids=["gan", "nsgan", "hinge", "wgan_gp"]
)
def test_d_loss_lower_when_discriminator_wins(loss):
    won = loss.d_loss(torch.full((4,), D_WINS["real"]), torch.full((4,), D_WINS["fake"]))
    for real, fake in [(0.0, 0.0), (-8.0, 8.0), (8.0, 8.0), (-8.0, -8.0)]:
        assert won < loss.d_loss(torch.full((4,), real), torch.full((4,), fake))


@pytest.mark.parametrize(
    "loss", [MinimaxGAN(), NonSaturatingGAN(), Hinge(), WassersteinGP()], ids=["gan", "nsgan", "hinge", "wgan_gp"]
)
def test_g_loss_lower_when_generator_fools_discriminator(loss):
    fooled = loss.g_loss(torch.full((4,), G_WINS))
    for fake in (-8.0, 0.0, 4.0):
        assert fooled < loss.g_loss(torch.full((4,), fake))


def test_bce_losses_reach_zero_at_perfect_discrimination():
    for loss in (MinimaxGAN(), NonSaturatingGAN()):
        assert loss.d_loss(torch.full((4,), 50.0), torch.full((4,), -50.0)) < 1e-6
    assert NonSaturatingGAN().g_loss(torch.full((4,), 50.0)) < 1e-6


def test_lsgan_minimized_exactly_at_targets():
    loss = LeastSquaresGAN(a=-1.0, b=1.0, c=0.0)
    targets = loss.d_loss(torch.full((4,), 1.0), torch.full((4,), -1.0))
    assert targets == 0
    assert loss.g_loss(torch.zeros(4)) == 0
    for offset in (-0.1, 0.1):
        assert loss.d_loss(torch.full((4,), 1.0 + offset), torch.full((4,), -1.0)) > targets
        assert loss.g_loss(torch.full((4,), offset)) > 0


def test_minimax_generator_saturates_where_non_saturating_does_not():
    """When D confidently rejects fakes, log(1 - D(G(z))) gives G almost no gradient; -log D(G(z)) does."""
    rejected = logits(-10.0)
    (minimax_grad,) = torch.autograd.grad(MinimaxGAN().g_loss(rejected), rejected)
    rejected = logits(-10.0)
    (non_saturating_grad,) = torch.autograd.grad(NonSaturatingGAN().g_loss(rejected), rejected)
    assert minimax_grad.abs() < 1e-3 < 0.9 < non_saturating_grad.abs()


def test_gradient_penalty_zero_for_unit_gradient_and_positive_otherwise():
    torch.manual_seed(0)
    real, fake = torch.randn(8, 1, 4, 4), torch.randn(8, 1, 4, 4)
    unit = nn.Sequential(nn.Flatten(), nn.Linear(16, 1, bias=False))
    with torch.no_grad():
        unit[1].weight.copy_(torch.ones(1, 16) / 4)  # ||w|| = 1: gradient norm 1 everywhere
    assert gradient_penalty(unit, real, fake).item() == pytest.approx(0.0, abs=1e-10)
    with torch.no_grad():
        unit[1].weight.mul_(3)  # gradient norm 3: penalty (3 - 1)^2 = 4
    assert gradient_penalty(unit, real, fake).item() == pytest.approx(4.0, rel=1e-5)
    # The penalty trains the critic: it has gradients with respect to D's weights.
    (weight_grad,) = torch.autograd.grad(gradient_penalty(unit, real, fake), unit[1].weight)
    assert weight_grad.abs().sum() > 0


def test_declared_needs():
    assert WassersteinGP().discriminator_steps == 5
    assert all(loss.discriminator_steps == 1 for loss in (MinimaxGAN(), NonSaturatingGAN(), LeastSquaresGAN(), Hinge()))
    with pytest.raises(ValueError, match="discriminator_steps"):
        Hinge(discriminator_steps=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_gradient_penalty_under_autocast_takes_its_inner_gradient_in_float32(dtype):
    """Under 16-mixed the inner gradient would be half precision and unscaled: small input gradients underflow."""
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Linear(8, 1))
    with torch.no_grad():  # an input gradient of 1e-8 a pixel: zero in float16 (smallest subnormal 6e-8)
        critic[1].weight.fill_(1e-4)
        critic[2].weight.fill_(1e-4 / 8)
    seen = []

    def discriminator(images):
        seen.append((images.dtype, torch.is_autocast_enabled("cpu")))
        return critic(images).squeeze(1)

    real, fake = torch.randn(4, 1, 4, 4), torch.randn(4, 1, 4, 4)
    with torch.autocast("cpu", dtype=dtype):
        penalty = gradient_penalty(discriminator, real, fake)
    assert seen == [(torch.float32, False)] and penalty.dtype == torch.float32
    expected = (1e-8 * 4 - 1) ** 2  # ||grad|| = 1e-8 * sqrt(16 pixels)
    assert penalty.item() == pytest.approx(expected, rel=1e-6)
    (weight_grad,) = torch.autograd.grad(penalty, critic[1].weight)
    assert torch.isfinite(weight_grad).all() and weight_grad.abs().max() > 0  # the penalty still trains D


def test_relativistic_pairing_scores_each_fake_against_its_own_real_image():
    """loss=rpgan (R3GAN): D wins when each real image outscores the fake it is paired with, G when each fake
    outscores its real pair; the pairing is by position, so the same scores paired otherwise give another loss."""
    loss = RelativisticPairing()
    real, fake = logits(2.0, -1.0, 200.0), logits(0.0, -3.0, -200.0)
    d_loss, g_loss = loss.d_loss(real, fake), loss.g_loss(fake, real)
    assert torch.isfinite(d_loss) and torch.isfinite(g_loss)
    assert all(torch.isfinite(g).all() for g in torch.autograd.grad(d_loss + g_loss, [real, fake]))
    assert d_loss < loss.d_loss(fake, real) and g_loss > loss.g_loss(real, fake)
    # a constant shift of all scores changes nothing: only the differences within pairs count
    assert loss.d_loss(real + 5, fake + 5).item() == pytest.approx(d_loss.item())
    swapped = torch.tensor([2.0, 200.0, -1.0])  # the same real scores, paired with other fakes
    assert loss.d_loss(swapped, fake).item() != pytest.approx(d_loss.item())
    assert (loss.r1_gamma, loss.r2_gamma) == (0.1, 0.1) and loss.relativistic and not Hinge.relativistic
