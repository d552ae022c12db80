"""The LightningModule's own contract: priors, the fixed noise buffer, optimizer order."""

from __future__ import annotations

import pytest
import torch

from ganlab.models.gan import GAN

PARTS = dict(
    generator={"_target_": "ganlab.networks.mlp.Generator", "latent_dim": 8, "hidden_dim": 16},
    discriminator={"_target_": "ganlab.networks.mlp.Discriminator", "hidden_dim": 16},
    loss={"_target_": "ganlab.losses.NonSaturatingGAN"},
    optimizer={
        "discriminator": {"_target_": "torch.optim.Adam", "lr": 1e-3},
        "generator": {"_target_": "torch.optim.SGD", "lr": 1e-2},
    },
    latent_dim=8,
)


def test_uniform_prior_stays_in_unit_box_and_normal_does_not():
    uniform = GAN(**PARTS, prior="uniform").sample_latent(5000)
    normal = GAN(**PARTS, prior="normal").sample_latent(5000)
    assert uniform.shape == normal.shape == (5000, 8)
    assert uniform.abs().max() <= 1 and normal.abs().max() > 2
    assert uniform.std().item() == pytest.approx(1 / 3**0.5, rel=0.05) and normal.std().item() == pytest.approx(
        1.0, rel=0.05
    )


def test_unknown_prior_is_rejected_by_name():
    with pytest.raises(ValueError, match="model.prior must be one of"):
        GAN(**PARTS, prior="laplace")


def test_unknown_compile_mode_is_rejected_naming_the_modes():
    with pytest.raises(ValueError, match="model.compile_mode must be one of .*reduce-overhead"):
        GAN(**PARTS, compile=True, compile_mode="fast")


def test_fixed_noise_is_a_saved_buffer():
    model = GAN(**PARTS, num_fixed_samples=16)
    assert model.fixed_noise.shape == (16, 8)
    assert "fixed_noise" in model.state_dict()
    assert "fixed_noise" not in dict(model.named_parameters())


def test_optimizers_are_discriminator_then_generator_with_their_own_settings():
    model = GAN(**PARTS)
    (d_opt, g_opt), _ = model.configure_optimizers()
    assert isinstance(d_opt, torch.optim.Adam) and isinstance(g_opt, torch.optim.SGD)
    assert {id(p) for group in d_opt.param_groups for p in group["params"]} == {
        id(p) for p in model.discriminator.parameters()
    }
    assert {id(p) for group in g_opt.param_groups for p in group["params"]} == {
        id(p) for p in model.generator.parameters()
    }


def test_generate_uses_eval_mode_and_restores_training_mode():
    model = GAN(**PARTS)
    model.train()
    norm = next(m for m in model.generator.modules() if isinstance(m, torch.nn.BatchNorm1d))
    running_mean = norm.running_mean.clone()
    full, part = model.generate(z=model.fixed_noise), model.generate(z=model.fixed_noise[:3])
    # In training mode BatchNorm would normalize by each batch's own statistics: a sub-batch's images would differ.
    assert torch.allclose(part, full[:3], atol=1e-6)
    assert torch.equal(norm.running_mean, running_mean)  # and it would have updated the running statistics
    assert model.generator.training


def test_labels_need_a_conditional_model():
    with pytest.raises(ValueError, match="labels need a class-conditional model"):
        GAN(**PARTS).generate(labels=torch.tensor([1, 2]))


@pytest.mark.parametrize("scaling, factor", [("none", 1.0), ("linear", 4.0), ("sqrt", 2.0)])
def test_scale_lr_multiplies_both_learning_rates_by_the_world_size_rule(make_cfg, scaling, factor):
    """Under DDP each rank takes a full data.batch_size (global batch world_size x B): optimizer.scale_lr opts in."""
    from types import SimpleNamespace

    from hydra.utils import instantiate

    cfg = make_cfg(
        ["model=mlp", f"optimizer.scale_lr={scaling}", "optimizer.discriminator.lr=1e-4", "optimizer.generator.lr=3e-4"]
    )
    model = instantiate(cfg.model, loss=cfg.loss, optimizer=cfg.optimizer, _recursive_=False, _convert_="all")
    model._trainer = SimpleNamespace(world_size=4)
    (d_opt, g_opt), _ = model.configure_optimizers()
    assert d_opt.param_groups[0]["lr"] == pytest.approx(1e-4 * factor)
    assert g_opt.param_groups[0]["lr"] == pytest.approx(3e-4 * factor)


@pytest.mark.parametrize(
    ("network", "together"),
    [("mlp", True), ("dcgan", False)],  # on this CPU: an MLP D in one forward, a convolutional D in two
)
def test_discriminator_scores_real_and_fake_in_one_forward_unless_convolutional_on_a_cpu(network, together):
    """The two ways give the same scores (D has no batch statistics here); only the speed differs."""
    torch.manual_seed(0)
    gan = GAN(
        generator={"_target_": f"ganlab.networks.{network}.Generator", "latent_dim": 8},
        discriminator={"_target_": f"ganlab.networks.{network}.Discriminator"}
        | ({"dropout": 0.0} if network == "dcgan" else {}),
        loss={"_target_": "ganlab.losses.Hinge"},
        optimizer={"discriminator": {"_target_": "torch.optim.Adam"}, "generator": {"_target_": "torch.optim.Adam"}},
        latent_dim=8,
    )
    batches = []
    gan.discriminator.register_forward_pre_hook(lambda module, args: batches.append(len(args[0])))
    real, fake, labels = torch.rand(6, 1, 28, 28), torch.rand(6, 1, 28, 28), torch.zeros(6)
    (real_scores, _), (fake_scores, _) = gan.discriminate_real_and_fake(real, fake, labels)
    assert batches == ([12] if together else [6, 6])
    assert torch.allclose(real_scores, gan.discriminator(real), atol=1e-5)
    assert torch.allclose(fake_scores, gan.discriminator(fake), atol=1e-5)


def test_two_forwards_run_one_spectral_norm_power_iteration_per_discriminator_update():
    """A spectral-norm D scored in two forwards (a conv D on a CPU) updates its power-iteration vectors once per D
    update, as the one forward over both does: the same scores and the same vectors after it."""
    parts = dict(
        generator={"_target_": "ganlab.networks.dcgan.Generator", "latent_dim": 8, "base_channels": 4},
        discriminator={"_target_": "ganlab.networks.dcgan.Discriminator", "base_channels": 4, "dropout": 0.0}
        | {"spectral_norm": True, "deep": True},
        loss={"_target_": "ganlab.losses.Hinge"},
        optimizer={"discriminator": {"_target_": "torch.optim.Adam"}, "generator": {"_target_": "torch.optim.Adam"}},
        latent_dim=8,
    )
    torch.manual_seed(0)
    apart, together = GAN(**parts), GAN(**parts)
    together.load_state_dict(apart.state_dict())
    together._together = True  # force the one forward
    real, fake, labels = torch.rand(5, 1, 28, 28), torch.rand(5, 1, 28, 28), torch.zeros(5)
    (real_a, _), (fake_a, _) = apart.discriminate_real_and_fake(real, fake, labels)
    (real_t, _), (fake_t, _) = together.discriminate_real_and_fake(real, fake, labels)
    assert not apart._scores_real_and_fake_together()
    assert torch.allclose(real_a, real_t, atol=1e-5) and torch.allclose(fake_a, fake_t, atol=1e-5)
    for name, value in apart.discriminator.state_dict().items():
        assert torch.allclose(value, together.discriminator.state_dict()[name], atol=1e-6), name  # _u, _v too
