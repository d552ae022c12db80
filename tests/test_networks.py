"""Model output shapes and ranges, and the details that make or break a GAN."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganlab.networks import dcgan, improved_gan, mlp

SHAPE = (1, 28, 28)
PAIRS = {
    "mlp": (
        mlp.Generator(latent_dim=16, hidden_dim=32, image_shape=SHAPE),
        mlp.Discriminator(hidden_dim=32, image_shape=SHAPE),
    ),
    "dcgan": (
        dcgan.Generator(latent_dim=16, base_channels=8, image_shape=SHAPE),
        dcgan.Discriminator(base_channels=8, image_shape=SHAPE),
    ),
}


@pytest.mark.parametrize("name", PAIRS)
def test_generator_images_in_tanh_range_and_discriminator_raw_logits(name):
    generator, discriminator = PAIRS[name]
    images = generator(torch.randn(5, 16) * 10)  # large z drives tanh to saturation
    assert images.shape == (5, *SHAPE)
    assert images.min() >= -1 and images.max() <= 1
    logits = discriminator(images)
    assert logits.shape == (5,)
    # Raw logits, not probabilities: the last layer is linear (the losses apply sigmoid themselves, stably).
    assert isinstance(list(discriminator.modules())[-1], nn.Linear)


@pytest.mark.parametrize("name", PAIRS)
def test_discriminator_has_no_batchnorm(name):
    """BatchNorm on D's output erases its signal; on D at all it couples examples (breaks per-example penalties)."""
    _, discriminator = PAIRS[name]
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in discriminator.modules())


@pytest.mark.parametrize("name", PAIRS)
def test_generator_batchnorm_uses_a_real_eps(name):
    generator, _ = PAIRS[name]
    norms = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert norms and all(m.eps == 1e-5 for m in norms)


def test_dcgan_init_is_normal_002():
    generator = dcgan.Generator(latent_dim=100, base_channels=64, image_shape=SHAPE)
    weight = generator.upsample[0].weight
    assert weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert weight.mean().abs().item() < 0.002


def test_dcgan_rejects_sizes_it_cannot_build():
    with pytest.raises(ValueError, match="divisible by 4"):
        dcgan.Generator(image_shape=(1, 30, 30))


def test_sgan_discriminator_init_gives_unit_variance_pre_activations_with_the_training_noise():
    from ganlab.data.idx import read_idx
    from ganlab.data.sources import BUNDLED_MNIST_SAMPLE

    torch.manual_seed(0)
    images = read_idx(BUNDLED_MNIST_SAMPLE / "train-images-idx3-ubyte.gz")[:500].float().div(127.5).sub(1).unsqueeze(1)
    discriminator = improved_gan.Discriminator(hidden_dims=(200, 100, 50))
    discriminator.initialize_from_data(images)
    pre_activations = []
    hooks = [
        m.register_forward_hook(lambda m, i, out: pre_activations.append(out))
        for m in discriminator.modules()
        if isinstance(m, improved_gan.NormalizedLinear)
    ]
    discriminator.train()  # a fresh draw of the noise the layers were normalized with
    discriminator(images)
    for hook in hooks:
        hook.remove()
    assert len(pre_activations) == 4
    for out in pre_activations:  # per unit over the batch: mean 0 and std 1, up to the noise's resampling
        assert out.mean(0).abs().mean() < 0.15 and (out.std(0) - 1).abs().mean() < 0.15


def test_sgan_generator_softplus_output_has_a_floor_and_no_ceiling():
    generator = improved_gan.Generator(latent_dim=8, hidden_dims=(16,), output="softplus")
    with torch.no_grad():
        generator.net[-2].scale.fill_(50.0)  # large pre-activations
        images = generator(torch.rand(64, 8) * 2 - 1)
    assert images.min() >= -1 and images.max() > 1  # tanh would cap at 1, and its gradient with it
    with pytest.raises(ValueError, match="model.generator.output must be one of"):
        improved_gan.Generator(output="sigmoid")


def test_cpu_dropout_draws_nn_dropouts_mask_distribution_and_scaling():
    from ganlab.networks.layers import Dropout

    layer = Dropout(0.3)
    x = torch.ones(400_000, requires_grad=True)
    torch.manual_seed(0)
    y = layer(x)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - 0.3) < 0.005  # 400,000 draws: the standard error is 0.0007
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / 0.7))  # survivors scaled as nn.Dropout does
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # the gradient is the same mask and scale
    torch.manual_seed(0)
    assert torch.equal(layer(x), y)  # seeded like every other draw: runs stay reproducible
    layer.eval()
    assert torch.equal(layer(x), x)
    assert torch.equal(Dropout(0.0)(x), x) and (Dropout(1.0)(x) == 0).all()  # the ends fall back to nn.Dropout
