"""Stabilizers: spectral normalization, R1, DiffAugment, nearest-neighbour upsampling, BatchNorm in D."""

from __future__ import annotations

import csv

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from ganlab.data.batches import LabelledBatch
from ganlab.losses import Hinge, NonSaturatingGAN, WassersteinGP, zero_centred_penalty
from ganlab.models.gan import GAN
from ganlab.networks import conditional_dcgan, dcgan
from ganlab.networks.augment import AugmentedDiscriminator, cutout, diff_augment, translation
from ganlab.networks.stabilizers import MinibatchStdDev, Pack, couples_examples

from families import resume_and_compare

SHAPE = (1, 28, 28)


def tiny_gan(augment=None, loss=None, augment_options=None, **discriminator):
    return GAN(
        generator={"_target_": "ganlab.networks.dcgan.Generator", "latent_dim": 8, "base_channels": 4},
        discriminator={"_target_": "ganlab.networks.dcgan.Discriminator", "base_channels": 4, **discriminator},
        loss=loss or {"_target_": "ganlab.losses.NonSaturatingGAN"},
        optimizer={"discriminator": {"_target_": "torch.optim.Adam"}, "generator": {"_target_": "torch.optim.Adam"}},
        latent_dim=8,
        augment=augment,
        **(augment_options or {}),
    )


# ---- spectral normalization ------------------------------------------------------------------------------
def test_spectral_norm_makes_every_layer_largest_singular_value_one():
    torch.manual_seed(0)
    discriminator = dcgan.Discriminator(base_channels=4, dropout=0.0, spectral_norm=True)
    for _ in range(30):  # each training forward pass is one power iteration
        discriminator(torch.randn(8, *SHAPE))
    layers = [m for m in discriminator.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 3 and all(hasattr(m, "parametrizations") for m in layers)
    for layer in layers:
        sigma = torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2)  # (out, in * k * k)
        assert sigma.item() == pytest.approx(1.0, abs=0.02)
        raw = torch.linalg.matrix_norm(layer.parametrizations.weight.original.detach().flatten(1), ord=2)
        assert raw.item() != pytest.approx(1.0, abs=0.1)  # the normalization, not the init, did it


# ---- R1 --------------------------------------------------------------------------------------------------
class Constant(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Parameter(torch.tensor(3.0))

    def forward(self, x):
        return self.c + 0 * x.flatten(1).sum(1)  # (B,), independent of x


def test_r1_is_zero_for_a_constant_discriminator():
    assert zero_centred_penalty(Constant(), torch.randn(4, *SHAPE)).item() == 0.0


def test_r1_is_the_squared_weight_norm_for_a_linear_discriminator_and_gamma_weights_it():
    torch.manual_seed(0)
    linear = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 1), nn.Flatten(0))  # D(x) = w.x + b: grad_x D = w
    expected = linear[1].weight.pow(2).sum()
    real = torch.randn(6, *SHAPE)
    assert zero_centred_penalty(linear, real).item() == pytest.approx(expected.item(), rel=1e-5)
    loss = Hinge(r1_gamma=10.0)
    assert loss.d_penalty(linear, real, real).item() == pytest.approx(5.0 * expected.item(), rel=1e-5)
    # differentiable in D's weights (create_graph): the penalty trains D
    zero_centred_penalty(linear, real).backward()
    assert linear[1].weight.grad.abs().sum() > 0


def test_lazy_r1_every_k_updates_weighted_k_times():
    linear = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 1), nn.Flatten(0))
    real = torch.randn(2, *SHAPE)
    full = zero_centred_penalty(linear, real).item()
    loss = NonSaturatingGAN(r1_gamma=2.0, r1_every=4)
    terms = [loss.d_penalty(linear, real, real).item() for _ in range(8)]
    assert terms[0] == pytest.approx(4 * full, rel=1e-5) and terms[4] == pytest.approx(4 * full, rel=1e-5)
    assert [t for i, t in enumerate(terms) if i % 4] == [0.0] * 6
    assert loss.state_dict() == {"r1_updates": 8}  # a resumed run keeps the cadence
    assert NonSaturatingGAN().d_penalty(linear, real, real).item() == 0.0  # off by default


def test_r2_penalizes_the_gradient_at_the_fakes_and_r1_at_the_real_images():
    """loss.r2_gamma: the zero-centred penalty on G's samples (R3GAN's R2), on the same lazy cadence as R1."""
    discriminator = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 1), nn.Flatten(0))
    square = lambda x: discriminator(x).pow(2)  # noqa: E731  (grad_x = 2 D(x) w: zero where D(x) = 0)
    real, fake = torch.randn(4, *SHAPE), torch.randn(4, *SHAPE)
    r1, r2 = zero_centred_penalty(square, real).item(), zero_centred_penalty(square, fake).item()
    assert r1 != pytest.approx(r2)
    assert Hinge(r2_gamma=2.0).d_penalty(square, real, fake).item() == pytest.approx(r2, rel=1e-5)
    assert Hinge(r1_gamma=2.0).d_penalty(square, real, fake).item() == pytest.approx(r1, rel=1e-5)
    both = Hinge(r1_gamma=2.0, r2_gamma=4.0, r1_every=2)
    terms = [both.d_penalty(square, real, fake).item() for _ in range(2)]
    assert terms == [pytest.approx(2 * (r1 + 2 * r2), rel=1e-5), 0.0]
    assert both.state_dict() == {"r1_updates": 2}


# ---- minibatch standard deviation ------------------------------------------------------------------------
def test_minibatch_std_appends_the_group_spread_and_couples_the_examples_of_a_group():
    torch.manual_seed(0)
    layer = MinibatchStdDev(group_size=2)
    x = torch.randn(4, 3, 5, 5)
    y = layer(x)
    assert y.shape == (4, 4, 5, 5) and torch.equal(y[:, :3], x)
    # strided groups, as StyleGAN's: examples 0 and 2 form one, 1 and 3 the other
    expected = ((x[0] - x[2]) / 2).abs().add(0).pow(2).add(1e-8).sqrt().mean()
    assert torch.allclose(y[0, 3], expected.expand(5, 5)) and torch.allclose(y[2, 3], y[0, 3])
    assert not torch.allclose(y[1, 3], y[0, 3])
    assert layer(x[:3]).shape == (3, 4, 5, 5)  # a batch the group does not divide: groups of 1 (spread 0)

    discriminator = dcgan.Discriminator(base_channels=4, dropout=0.0, spectral_norm=True, deep=True, minibatch_std=4)
    discriminator.eval()
    images = torch.randn(8, *SHAPE)
    moved = images.clone()
    moved[4] += 1  # in example 0's group (0, 2, 4, 6): D(x_0) changes though x_0 did not
    assert discriminator(images)[0] != discriminator(moved)[0]
    assert discriminator(images)[1] == discriminator(moved)[1]  # another group: unchanged
    assert couples_examples(discriminator)
    for conditional in (conditional_dcgan.ProjectionDiscriminator, conditional_dcgan.AuxiliaryClassifierDiscriminator):
        assert couples_examples(conditional(base_channels=4, minibatch_std=4))  # model=cgan, model=acgan
        assert not couples_examples(conditional(base_channels=4))
    with pytest.raises(ValueError, match="minibatch_std=1: it is a group size"):
        dcgan.Discriminator(minibatch_std=1)
    with pytest.raises(ValueError, match="minibatch_std=0"):  # the per-example penalties name the fix
        tiny_gan(minibatch_std=4, loss={"_target_": "ganlab.losses.Hinge", "r1_gamma": 1.0})


# ---- packing (PacGAN) ------------------------------------------------------------------------------------
def test_packing_joins_consecutive_images_along_the_channels_and_d_scores_one_pack_each():
    x = torch.randn(5, 3, 4, 4)
    packed = Pack(2)(x)
    assert packed.shape == (3, 6, 4, 4)
    assert torch.equal(packed[0], torch.cat([x[0], x[1]])) and torch.equal(packed[1], torch.cat([x[2], x[3]]))
    assert torch.equal(packed[2], torch.cat([x[4], x[0]]))  # a batch 2 does not divide: the first image fills in
    assert torch.equal(Pack(4)(x[:1]), x[:1].repeat(1, 4, 1, 1))

    torch.manual_seed(0)
    discriminator = dcgan.Discriminator(base_channels=4, dropout=0.0, spectral_norm=True, deep=True, packing=2)
    discriminator.eval()
    images = torch.randn(8, *SHAPE)
    moved = images.clone()
    moved[1] += 1  # in pack 0 (images 0 and 1)
    scores, scores_moved = discriminator(images), discriminator(moved)
    assert scores.shape == (4,)
    assert scores[0] != scores_moved[0] and torch.equal(scores[1:], scores_moved[1:])
    assert couples_examples(discriminator) and not couples_examples(dcgan.Discriminator(base_channels=4))
    with pytest.raises(ValueError, match="packing=0: it is a number of images"):
        dcgan.Discriminator(packing=0)
    with pytest.raises(ValueError, match="packing=1"):  # the per-example penalties name the fix
        tiny_gan(packing=2, loss={"_target_": "ganlab.losses.Hinge", "r1_gamma": 1.0})


# ---- DiffAugment -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("augment", [translation, cutout, lambda x: diff_augment(x, ["translation", "cutout"])])
def test_augmentations_keep_shape_and_range_and_pass_gradients(augment):
    torch.manual_seed(0)
    x = (torch.rand(16, *SHAPE) * 2 - 1).requires_grad_(True)
    y = augment(x)
    assert y.shape == x.shape
    assert y.min() >= -1 and y.max() <= 1
    assert not torch.equal(y, x)
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_translation_moves_content_and_cutout_zeroes_a_square_per_image():
    torch.manual_seed(0)
    x = torch.rand(64, *SHAPE) + 0.5  # no zeros anywhere
    shifted = translation(x)
    assert (shifted == 0).flatten(1).any(1).float().mean() > 0.5  # most images shifted in some zero padding
    cut = cutout(x)
    assert ((cut == 0).flatten(1).sum(1) >= 7 * 7).all()  # at least a quarter of the 14x14 square, even at a corner


def test_diffaugment_reaches_real_and_fake_batches_in_both_updates_and_not_validation():
    torch.manual_seed(0)
    model = tiny_gan(augment=["translation", "cutout"])
    assert isinstance(model.discriminator, AugmentedDiscriminator)
    seen = []
    model.discriminator.discriminator.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    real = torch.rand(8, *SHAPE) * 0.5 + 0.5  # no exact zeros; G's tanh output has none either
    model.discriminator_loss(
        LabelledBatch(real, torch.zeros(8))
    )  # D(real) and D(fake) (two forwards: a conv D on a CPU)
    model.generator_loss(LabelledBatch(real, torch.zeros(8)))  # D(G(z))
    images = torch.cat(seen)
    assert len(images) == 3 * 8  # 8 real, 8 fake, 8 fake in G's update
    assert ((images == 0).flatten(1).sum(1) >= 7 * 7).all()  # every image D saw carries a cutout square
    model.eval()
    seen.clear()
    model.discriminator(real)
    assert torch.equal(seen[0], real)  # validation sees the images as they are


def cut_images(images):
    """Which images carry a cutout square (inputs with no exact zeros of their own)."""
    return (images == 0).flatten(1).sum(1) >= 7 * 7


def test_augment_p_reaches_that_share_of_images_and_p_0_none():
    torch.manual_seed(0)
    x = torch.rand(2000, *SHAPE) + 0.5
    assert not cut_images(diff_augment(x, ["cutout"], torch.tensor(0.0))).any()
    assert torch.equal(diff_augment(x, ["translation"], torch.tensor(0.0)), x)
    share = cut_images(diff_augment(x, ["cutout"], torch.tensor(0.3))).float().mean().item()
    assert share == pytest.approx(0.3, abs=0.04)
    augmented = tiny_gan(augment=["cutout"], augment_options={"augment_p": 0.3}).discriminator
    assert augmented.p.item() == pytest.approx(0.3) and not augmented.adaptive


def test_ada_moves_p_toward_the_overfitting_target_in_steps_of_the_images_seen_and_keeps_it_in_0_1():
    """model.augment_target (StyleGAN2-ADA): p starts at 0, rises while E[sign D(x)] on real images is above the
    target and falls while below, by batch / augment_speed per D update; checkpoints keep p."""
    options = {"augment_target": 0.6, "augment_speed": 80}
    gan = tiny_gan(augment=["translation", "cutout"], loss={"_target_": "ganlab.losses.Hinge"}, augment_options=options)
    augmenter = gan.discriminator
    assert gan.adaptive_augmenters() == [augmenter] and augmenter.p.item() == 0.0
    augmenter.adapt(torch.tensor(0.0), images=8)  # below the target at 0: stays at 0
    assert augmenter.p.item() == 0.0
    for expected in (0.1, 0.2, 0.3):
        augmenter.adapt(torch.tensor(0.9), images=8)
        assert augmenter.p.item() == pytest.approx(expected)
    augmenter.adapt(torch.tensor(0.5), images=8)
    assert augmenter.p.item() == pytest.approx(0.2)
    for _ in range(20):
        augmenter.adapt(torch.tensor(1.0), images=8)
    assert augmenter.p.item() == 1.0
    assert gan.state_dict()["discriminator.p"].item() == 1.0
    # The signal is read from the D update's real scores around the loss's boundary: LSGAN's halfway target.
    lsgan = tiny_gan(augment=["cutout"], loss={"_target_": "ganlab.losses.LeastSquaresGAN"}, augment_options=options)
    assert lsgan.loss.decision_boundary == 0.5


def test_ada_is_refused_where_it_has_no_signal_or_nothing_to_adapt():
    with pytest.raises(ValueError, match="model.augment_p"):  # a critic's scores have no decision boundary
        tiny_gan(
            augment=["cutout"],
            loss={"_target_": "ganlab.losses.WassersteinGP"},
            augment_options={"augment_target": 0.6},
        )
    with pytest.raises(ValueError, match=r"model.augment=\[translation,cutout\]"):
        tiny_gan(augment_options={"augment_target": 0.6})


def test_ada_trains_and_logs_p_and_the_signal_and_resumes_exactly(tmp_path):
    args = [
        "model=mlp",
        "loss=hinge",
        "model.augment=[translation,cutout]",
        "model.augment_target=-0.9",  # low, so that p rises whatever this CPU's float order makes of the first updates
        "model.augment_speed=200",  # fast enough to move within 10 updates
        "trainer.log_every_n_steps=1",
    ]
    full, resumed = resume_and_compare(tmp_path, args, resume_step=6)
    with open(tmp_path / "full" / "csv" / "metrics.csv") as f:
        logged = [row for row in csv.DictReader(f) if row.get("augment/p")]
    p, r_t = [float(row["augment/p"]) for row in logged], [float(row["augment/r_t"]) for row in logged]
    assert len(p) == 10 and max(p) > 0 and all(0 <= value <= 1 for value in p)
    assert all(-1 <= value <= 1 for value in r_t)
    for name, tensor in full["model"].state_dict().items():
        assert torch.equal(tensor, resumed["model"].state_dict()[name]), name


# ---- LeCam regularization ---------------------------------------------------------------------------------
def test_lecam_pulls_each_side_toward_the_moving_average_of_the_other_and_keeps_its_anchors():
    loss = Hinge(lecam_weight=0.5, lecam_decay=0.9)
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 1.0])
    # First update: the anchors are its own means, (1, 0). relu(real - 0)^2 -> (4 + 0) / 2, relu(1 - fake)^2 -> (4 + 0) / 2.
    assert loss.lecam_term(real, fake, torch.tensor([1.0, 0.0])).item() == pytest.approx(0.5 * (2 + 2))
    # Then 0.9 * (1, 0) + 0.1 * (3, -1) = (1.2, -0.1): relu(real + 0.1)^2 -> (4.41 + 0.01) / 2, relu(1.2 - fake)^2 -> (4.84 + 0.04) / 2.
    assert loss.lecam_term(real, fake, torch.tensor([3.0, -1.0])).item() == pytest.approx(0.5 * (2.21 + 2.44))
    assert loss.state_dict()["lecam_anchors"] == pytest.approx([1.2, -0.1])
    resumed = Hinge(lecam_weight=0.5, lecam_decay=0.9)
    resumed.load_state_dict(loss.state_dict())
    means = torch.tensor([0.5, 0.5])
    assert resumed.lecam_term(real, fake, means).item() == pytest.approx(loss.lecam_term(real, fake, means).item())
    # Scores inside the anchors (real below the fakes' average, fakes above the reals'): no pull at all.
    assert Hinge(lecam_weight=1.0).lecam_term(real - 5, fake + 5, torch.tensor([1.0, 0.0])).item() == 0
    assert Hinge().state_dict() == {}  # off by default: no state, no term


def test_lecam_trains_logs_its_term_and_resumes_exactly_and_is_refused_where_it_has_no_place(tmp_path, make_cfg):
    args = ["model=mlp", "loss=hinge", "loss.lecam_weight=0.3", "trainer.log_every_n_steps=1"]
    full, resumed = resume_and_compare(tmp_path, args, resume_step=6)
    with open(tmp_path / "full" / "csv" / "metrics.csv") as f:
        lecam = [float(row["loss/d_lecam"]) for row in csv.DictReader(f) if row.get("loss/d_lecam")]
    assert len(lecam) == 10 and all(value >= 0 for value in lecam) and max(lecam) > 0
    for name, tensor in full["model"].state_dict().items():  # the anchors came back with the checkpoint
        assert torch.equal(tensor, resumed["model"].state_dict()[name]), name
    for preset in ("experiment=began", "experiment=cyclegan"):  # an autoencoder's errors; a family's own D loss
        cfg = make_cfg([preset, "loss.lecam_weight=0.3"])
        with pytest.raises(Exception, match="has its own discriminator loss|scores by reconstruction_error"):
            instantiate(cfg.model, loss=cfg.loss, optimizer=cfg.optimizer, _recursive_=False, _convert_="all")


def test_augment_policy_is_checked_by_name():
    with pytest.raises(ValueError, match="unknown augmentation"):
        tiny_gan(augment=["color"])


# ---- generator upsampling --------------------------------------------------------------------------------
def test_nearest_upsampling_generator_has_no_transposed_convs_and_keeps_shape_and_range():
    generator = dcgan.Generator(latent_dim=8, base_channels=4, upsample="nearest")
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in generator.modules())
    assert sum(isinstance(m, nn.Upsample) for m in generator.modules()) == 2
    images = generator(torch.randn(3, 8) * 10)
    assert images.shape == (3, *SHAPE) and images.min() >= -1 and images.max() <= 1
    with pytest.raises(ValueError, match="upsample must be one of"):
        dcgan.Generator(upsample="bilinear")


def test_generator_head_draws_the_image_from_full_resolution_maps():
    """head_channels=h: the last upsampling makes h maps at full size and a 3x3 conv the image; 0 keeps DCGAN's G."""
    plain = dcgan.Generator(latent_dim=8, base_channels=4)
    headed = dcgan.Generator(latent_dim=8, base_channels=4, head_channels=6)
    last = [m for m in headed.modules() if isinstance(m, nn.Conv2d)][-1]
    assert (last.in_channels, last.out_channels, last.kernel_size) == (6, 1, (3, 3))
    assert not any(isinstance(m, nn.Conv2d) and not isinstance(m, nn.ConvTranspose2d) for m in plain.modules())
    for generator in (headed, dcgan.Generator(latent_dim=8, base_channels=4, head_channels=6, upsample="nearest")):
        images = generator(torch.randn(3, 8) * 10)
        assert images.shape == (3, *SHAPE) and images.min() >= -1 and images.max() <= 1
    with pytest.raises(ValueError, match="head_channels"):
        dcgan.Generator(head_channels=-1)


def test_deep_discriminator_has_five_spectrally_normalized_convs_and_scores_each_example_alone():
    """model.discriminator.deep: SNGAN's standard CNN D at 28x28; per-example (no batch statistics), so the
    per-example penalties stay allowed and real and fake may share one forward (on a GPU)."""
    torch.manual_seed(0)
    discriminator = dcgan.Discriminator(base_channels=4, dropout=0.0, spectral_norm=True, deep=True)
    convs = [m for m in discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.kernel_size, m.stride) for m in convs] == [((3, 3), (1, 1)), ((4, 4), (2, 2))] * 2 + [((3, 3), (1, 1))]
    assert all(hasattr(m, "parametrizations") for m in convs)
    images = torch.randn(6, *SHAPE)
    scores = discriminator(images)
    assert scores.shape == (6,)
    discriminator.eval()  # no power iteration: the same weights for both calls
    assert torch.allclose(discriminator(images)[:2], discriminator(images[:2]), atol=1e-6)
    assert not couples_examples(discriminator)


def test_conditional_discriminators_take_the_default_recipes_deep_spectral_norm_trunk():
    """model=cgan / model=acgan with model.discriminator.deep=true spectral_norm=true: the default recipe's D."""
    for conditional in (conditional_dcgan.ProjectionDiscriminator, conditional_dcgan.AuxiliaryClassifierDiscriminator):
        discriminator = conditional(base_channels=4, dropout=0.0, deep=True, spectral_norm=True)
        convs = [m for m in discriminator.modules() if isinstance(m, nn.Conv2d)]
        linears = [m for m in discriminator.modules() if isinstance(m, nn.Linear)]
        assert len(convs) == 5 and all(hasattr(m, "parametrizations") for m in convs + linears)
        assert not any(hasattr(m, "parametrizations") for m in conditional(base_channels=4).modules())


# ---- BatchNorm in D --------------------------------------------------------------------------------------
def test_batchnorm_discriminator_is_refused_with_per_example_penalties_only():
    gan = tiny_gan(batchnorm=True)  # nsgan: fine
    assert any(isinstance(m, nn.BatchNorm2d) for m in gan.discriminator.modules())
    with pytest.raises(ValueError, match="BatchNorm"):
        tiny_gan(batchnorm=True, loss={"_target_": "ganlab.losses.WassersteinGP"})
    with pytest.raises(ValueError, match="r1_gamma"):
        tiny_gan(batchnorm=True, loss={"_target_": "ganlab.losses.Hinge", "r1_gamma": 1.0})
    tiny_gan(loss={"_target_": "ganlab.losses.WassersteinGP", "r1_gamma": 1.0})  # no BatchNorm: fine
    assert WassersteinGP.per_example_penalty and not NonSaturatingGAN.per_example_penalty


# ---- config switches -------------------------------------------------------------------------------------
def test_config_switches_compose_and_build(make_cfg):
    cfg = make_cfg(
        [
            "model.generator.upsample=nearest",
            "model.discriminator.spectral_norm=true",
            "model.augment=[translation,cutout]",
            "loss=hinge",
            "loss.r1_gamma=0.1",
            "loss.r1_every=4",
            "optimizer=ttur",
        ]
    )
    model = instantiate(cfg.model, loss=cfg.loss, optimizer=cfg.optimizer, _recursive_=False, _convert_="all")
    assert isinstance(model.discriminator, AugmentedDiscriminator)
    assert (model.loss.r1_gamma, model.loss.r1_every) == (0.1, 4)
    (d_opt, g_opt), _ = model.configure_optimizers()
    assert d_opt.defaults["lr"] == 4 * g_opt.defaults["lr"]
    with pytest.raises(Exception, match="spectral_nrom"):
        make_cfg(["model.discriminator.spectral_nrom=true"])


def test_default_recipe_is_the_deep_spectral_norm_d_at_adam_2e3_and_presets_keep_what_they_were_measured_with(make_cfg):
    cfg = make_cfg([])
    d = cfg.model.discriminator
    assert (d.deep, d.spectral_norm, d.base_channels, d.dropout) == (True, True, 32, 0.0)
    assert cfg.optimizer.discriminator.lr == cfg.optimizer.generator.lr == 2e-3
    assert cfg.loss._target_ == "ganlab.losses.Hinge" and cfg.callbacks.ema is not None
    for preset in ("cgan", "seed_vanilla_gan", "stackgan", "cyclegan", "dcgan_lsgan"):
        optimizer = make_cfg([f"experiment={preset}"]).optimizer
        assert optimizer.discriminator.lr == optimizer.generator.lr == 2e-4, preset
    assert make_cfg(["experiment=wgan"]).model.discriminator.deep is False  # the critic it was measured with
    acgan = make_cfg(["experiment=acgan"])  # measured on the default recipe's D (docs/variants.md)
    d = acgan.model.discriminator
    assert (d.deep, d.spectral_norm, d.dropout, acgan.optimizer.generator.lr) == (True, True, 0.0, 2e-3)
    assert acgan.loss._target_ == "ganlab.losses.Hinge" and acgan.callbacks.ema.decay == 0.99


def test_quality_preset_composes_with_its_stabilizers(make_cfg):
    cfg = make_cfg(["experiment=quality"])
    d = cfg.model.discriminator
    assert (d.deep, d.spectral_norm, d.base_channels) == (True, True, 48) and cfg.model.generator.head_channels == 32
    # Measured at Adam 1e-3, not at adam_fast's 2e-3.
    assert cfg.optimizer.discriminator.lr == cfg.optimizer.generator.lr == 1e-3
    assert cfg.loss._target_ == "ganlab.losses.Hinge" and cfg.callbacks.ema is not None
