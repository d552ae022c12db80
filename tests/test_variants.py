"""The GAN family beyond one generator and one discriminator score: cGAN, ACGAN, SGAN, WGAN with clipping, BEGAN.

Each preset trains on the real (bundled) MNIST sample, on one CPU and under 2-process DDP; checkpoints rebuild
each variant on their own; the properties that define each variant hold after real updates.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.errors import InstantiationException
from PIL import Image

from ganlab.data.idx_datamodule import UNLABELLED
from ganlab.data.mnist import MNISTDataModule
from ganlab.data.sources import BUNDLED_MNIST_SAMPLE
from ganlab.evaluate import evaluate
from ganlab.losses import BoundaryEquilibrium, WassersteinClip
from ganlab.metrics.classifier import extractor_for, to_model_input
from ganlab.metrics.conditional_accuracy import conditional_accuracy
from ganlab.models.acgan import ACGAN, data_to_data_cross_entropy
from ganlab.models.began import BEGAN
from ganlab.models.cgan import ConditionalGAN
from ganlab.models.gan import GAN
from ganlab.models.sgan import SemiSupervisedGAN
from ganlab.networks.dcgan import Generator as DCGANGenerator
from ganlab.sample import sample
from ganlab.train import train

from conftest import app_config, compose_config

REPO = Path(__file__).resolve().parents[1]

# Each preset, shrunk so that a step takes milliseconds, and the curve that shows what it does.
SMALL = {
    "cgan": ["model.generator.base_channels=8", "model.discriminator.base_channels=8"],
    "acgan": ["model.generator.base_channels=8", "model.discriminator.base_channels=8"],
    "sgan": ["model.discriminator.hidden_dims=[64,32]", "model.generator.hidden_dims=[32]", "data.labels_per_class=2"],
    "wgan": ["model.generator.base_channels=8", "model.discriminator.base_channels=8", "loss.discriminator_steps=2"],
    "began": ["model.generator.base_channels=4", "model.discriminator.base_channels=4"],
}
CURVES = {
    "cgan": "loss/d",
    "acgan": "loss/d_class",
    "sgan": "loss/d_class",
    "wgan": "critic/wasserstein_estimate",
    "began": "began/convergence",
}
VARIANT_CLASS = {"cgan": ConditionalGAN, "acgan": ACGAN, "sgan": SemiSupervisedGAN, "wgan": GAN, "began": BEGAN}


def small(experiment: str, *overrides: str) -> list[str]:
    return [f"experiment={experiment}", "data.batch_size=8", "logger=csv", "test=false", *SMALL[experiment], *overrides]


@pytest.mark.parametrize("experiment", list(SMALL))
def test_each_preset_trains_checkpoints_and_rebuilds(make_cfg, tmp_path, experiment):
    result = train(make_cfg(small(experiment, "trainer.max_steps=3")))
    assert result["trainer"].global_step == 3
    assert torch.isfinite(torch.tensor(result["metrics"][CURVES[experiment]]))
    trained = result["model"]
    restored = GAN.load_from_checkpoint(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu")
    assert type(restored) is VARIANT_CLASS[experiment]  # the base class's loader returns the variant
    data = result["datamodule"]
    assert torch.equal(restored.evaluator().sample_grid(data).images, trained.evaluator().sample_grid(data).images)
    assert restored.loss.state_dict() == trained.loss.state_dict()  # BEGAN's k_t travels with the checkpoint


def test_labels_per_class_keeps_exactly_k_per_class_fixed_by_seed():
    def kept(seed: int, k: int) -> torch.Tensor:
        data = MNISTDataModule(root=str(BUNDLED_MNIST_SAMPLE), download=False, seed=seed, labels_per_class=k)
        data.setup("fit")
        return data.train_set.tensors[1]

    labels = kept(0, 10)
    assert torch.equal(labels[labels != UNLABELLED].bincount(minlength=10), torch.full((10,), 10))
    assert (labels == UNLABELLED).sum() == len(labels) - 100
    assert torch.equal(labels, kept(0, 10)) and not torch.equal(labels, kept(1, 10))
    full = MNISTDataModule(root=str(BUNDLED_MNIST_SAMPLE), download=False, seed=0)
    full.setup("fit")
    true_labels = full.train_set.tensors[1]
    assert torch.equal(labels[labels != UNLABELLED], true_labels[labels != UNLABELLED])  # kept labels are the true ones
    with pytest.raises(ValueError, match="lower data.labels_per_class"):
        kept(0, 5000)


def test_semi_supervised_batches_pair_unlabelled_with_labelled_chunks():
    data = MNISTDataModule(
        root=str(BUNDLED_MNIST_SAMPLE), download=False, batch_size=6, labels_per_class=1, discriminator_steps=2
    )
    data.setup("fit")
    batches = list(data.train_dataloader())
    unlabelled_count = (data.train_set.tensors[1] == UNLABELLED).sum().item()
    assert len(batches) == unlabelled_count // 12  # an epoch is one pass over the unlabelled images
    for _, labels in batches[:5]:
        for chunk in labels.view(2, 12):  # per discriminator step: 6 unlabelled, then 6 labelled
            assert (chunk[:6] == UNLABELLED).all() and (chunk[6:] != UNLABELLED).all()
    # A run resumed mid-epoch (the loader's state comes from the checkpoint) gets the batches it would have got.
    loader = data.train_dataloader()
    loader.load_state_dict({"epoch": 0, "yielded": 3})
    resumed = [labels for _, labels in loader]
    assert len(resumed) == len(batches) - 3
    assert all(torch.equal(a, b[1]) for a, b in zip(resumed, batches[3:]))


def test_conditional_models_refuse_hidden_labels(make_cfg):
    with pytest.raises(ValueError, match="data.labels_per_class=null"):
        train(make_cfg(small("cgan", "data.labels_per_class=5", "trainer.max_steps=1")))


# ---- WGAN ------------------------------------------------------------------------------------------------
def test_wgan_critic_weights_stay_within_the_clip_after_steps(make_cfg):
    cfg = make_cfg(small("wgan", "trainer.max_steps=2"))
    clip = cfg.loss.clip_value
    gan = train(cfg)["model"]
    weights = torch.cat([p.detach().flatten() for p in gan.discriminator.parameters()])
    assert weights.abs().max() <= clip
    # DCGAN's N(0, 0.02) init puts most weights beyond 0.01: the clip acted, it did not just hold trivially.
    assert (weights.abs() == clip).float().mean() > 0.2
    assert isinstance(gan.loss, WassersteinClip)
    assert type(gan.trainer.optimizers[0]).__name__ == "RMSprop" and gan.trainer.optimizers[0].defaults["lr"] == 2e-4
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in gan.discriminator.modules())  # the paper's DCGAN critic


# ---- BEGAN -----------------------------------------------------------------------------------------------
def test_began_k_stays_in_unit_interval_and_follows_the_equilibrium():
    loss = BoundaryEquilibrium(gamma=0.75, lambda_k=0.5)
    loss.update_state(torch.tensor(1.0), torch.tensor(0.0))  # G far behind: k grows...
    assert loss.k == 0.375
    loss.update_state(torch.tensor(10.0), torch.tensor(0.0))
    assert loss.k == 1.0  # ...and stops at 1
    loss.update_state(torch.tensor(0.0), torch.tensor(10.0))
    assert loss.k == 0.0  # and at 0
    # M = L(x) + |gamma L(x) - L(G(z))|: at equilibrium it is L(x) alone.
    metrics = loss.metrics(torch.tensor([0.4, 0.4]), torch.tensor([0.3, 0.3]))
    assert torch.isclose(metrics["began/convergence"], torch.tensor(0.4))


def test_began_preset_has_batchnorm_generator_and_bottleneck_batchnorm_discriminator(make_cfg):
    """What took the CPU-sized BEGAN from one digit to ten (docs/variants.md): DCGAN's BatchNorm G, and BatchNorm
    at D's bottleneck, which makes a fake's reconstruction depend on its batch, so real and fake are scored apart."""
    gan = train(make_cfg(small("began", "trainer.max_steps=2")))["model"]
    assert isinstance(gan.generator, DCGANGenerator)
    bottleneck = [m for m in gan.discriminator.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    # Per update: real and fake apart in D's step, the fakes again in G's: 3 batches, 2 updates.
    assert len(bottleneck) == 2 and all(m.num_batches_tracked == 3 * 2 for m in bottleneck)
    assert not gan._scores_real_and_fake_together()
    gan.discriminator.train()
    images = torch.rand(8, 1, 28, 28) * 2 - 1
    alone, in_other_batch = gan.discriminator(images[:4]), gan.discriminator(torch.cat([images[:4], -images[4:]]))[:4]
    assert not torch.allclose(alone, in_other_batch)  # the batch's statistics reach each score


def test_began_k_moves_and_stays_in_unit_interval_in_training(make_cfg):
    gan = train(make_cfg(small("began", "trainer.max_steps=4", "loss.lambda_k=0.5")))["model"]
    assert 0.0 < gan.loss.k <= 1.0  # it moved from k_0 = 0 (resume: tests/test_resume.py)


# ---- conditional sampling --------------------------------------------------------------------------------
def test_conditional_sampling_follows_the_requested_labels(make_cfg):
    gan = train(make_cfg(small("acgan", "trainer.max_steps=2")))["model"]
    z = gan.sample_latent(4)
    sevens = gan.generate(z=z, labels=torch.tensor([7, 7, 7, 7]))
    assert sevens.shape == (4, 1, 28, 28)
    assert torch.equal(sevens, gan.generate(z=z, labels=[7, 7, 7, 7]))
    assert not torch.allclose(
        sevens, gan.generate(z=z, labels=torch.tensor([1, 1, 1, 1]))
    )  # the label changes the image
    # Without labels: classes in turn; the sample grid: row i is class i, the same z down each column.
    assert torch.equal(gan.generate(z=z), gan.generate(z=z, labels=torch.tensor([0, 1, 2, 3])))
    assert gan.evaluator().sample_grid(None).nrow == 10 and torch.equal(
        gan.fixed_labels.view(10, 10), torch.arange(10)[:, None].expand(10, 10)
    )
    assert torch.equal(gan.fixed_noise.view(10, 10, -1)[0], gan.fixed_noise.view(10, 10, -1)[9])
    with pytest.raises(ValueError, match=r"class indices in \[0, 10\)"):
        gan.generate(labels=torch.tensor([10]))


def test_tac_gan_twin_head_learns_the_fakes_classes_and_g_maximizes_its_cross_entropy(make_cfg):
    gan = train(make_cfg(small("acgan", "trainer.max_steps=2", "model.twin_classifier=true")))["model"]
    labels = torch.arange(8) % 10
    images = gan.generate(labels=labels)
    _, aux = gan.discriminate(images, labels)
    assert len(aux) == 2 and aux[1].shape == (8, 10)  # the class head, and the twin head of fakes
    d_terms, g_terms = gan.discriminator_terms(aux, aux, labels), gan.generator_terms(aux, labels)
    assert torch.allclose(g_terms["loss/g_twin"], -d_terms["loss/d_twin"])  # the twin's cross-entropy, signs opposed
    plain = train(make_cfg(small("acgan", "trainer.max_steps=1")))["model"]
    assert plain.discriminator.classify_fake is None and "loss/g_twin" not in plain.generator_terms(aux[:1], labels)
    with pytest.raises(InstantiationException, match="needs model.discriminator.twin_head=True"):
        train(
            make_cfg(
                small(
                    "acgan", "trainer.max_steps=1", "model.twin_classifier=true", "model.discriminator.twin_head=false"
                )
            )
        )


def test_evaluate_and_sample_a_conditional_checkpoint(make_cfg, tmp_path):
    train(make_cfg(small("cgan", "trainer.max_steps=2")))
    checkpoint = tmp_path / "checkpoints" / "last.ckpt"
    results = evaluate(
        app_config(
            "evaluate",
            tmp_path / "evaluate",
            [f"ckpt_path={checkpoint}", "num_samples=100", "metrics.kid_subset_size=50"],
        )
    )
    assert len(results["conditional_accuracy_per_class"]) == 10 and 0 <= results["conditional_accuracy"] <= 1
    # Default grid: one row per class (10 rows of 2 for 20 samples); 28-pixel images with 2-pixel padding.
    paths = sample(app_config("sample", tmp_path / "sample", [f"ckpt_path={checkpoint}", "num_samples=20"]))
    assert Image.open(paths["samples"]).size == (2 * 30 + 2, 10 * 30 + 2)
    paths = sample(app_config("sample", tmp_path / "sevens", [f"ckpt_path={checkpoint}", "num_samples=4", "labels=7"]))
    assert Image.open(paths["samples"]).size == (2 * 30 + 2, 2 * 30 + 2)
    train(compose_config(tmp_path / "mlp", ["model=mlp", "trainer.max_steps=1", "logger=csv"]))
    with pytest.raises(ValueError, match="class-conditional checkpoint"):
        sample(
            app_config(
                "sample", tmp_path / "bad", [f"ckpt_path={tmp_path / 'mlp' / 'checkpoints' / 'last.ckpt'}", "labels=7"]
            )
        )


def test_conditional_accuracy_scores_a_faithful_generator_high_and_a_label_blind_one_at_chance():
    """Two "generators" made of real test digits: one returns a digit of the asked-for class, the other ignores the
    label. The score must tell them apart: near 1 (the classifier's own accuracy) and near 1/10."""
    datamodule = MNISTDataModule(root="/nonexistent", download=False)
    datamodule.setup()
    classifier, _ = extractor_for(datamodule, train_if_missing=False)
    images, labels = datamodule.test_set.tensors
    images = to_model_input(images)  # (N, 1, 28, 28) in [-1, 1]
    by_class = [images[labels == label] for label in range(10)]
    generator = torch.Generator().manual_seed(0)

    def faithful(asked: torch.Tensor) -> torch.Tensor:
        return torch.stack(
            [by_class[label][torch.randint(len(by_class[label]), (), generator=generator)] for label in asked.tolist()]
        )

    def label_blind(asked: torch.Tensor) -> torch.Tensor:
        return images[torch.randint(len(images), (len(asked),), generator=generator)]

    assert conditional_accuracy(faithful, classifier, 10, per_class=100)["conditional_accuracy"] > 0.95
    assert abs(conditional_accuracy(label_blind, classifier, 10, per_class=100)["conditional_accuracy"] - 0.1) < 0.05


def test_data_to_data_cross_entropy_pulls_to_the_proxy_until_the_margin_and_pushes_other_classes_only():
    """ReACGAN's class term (model.class_loss=data_to_data): lower when each embedding sits at its own class's
    proxy; an easy positive (cosine past the margin) gets no more pull; images of the same class are not negatives."""
    proxies = torch.eye(4)[:3]  # (N=3, E=4) unit proxies
    labels = torch.tensor([0, 1, 2, 0])
    at_own = torch.eye(4)[[0, 1, 2, 0]]  # each embedding at its class's proxy
    at_other = torch.eye(4)[[1, 2, 0, 1]]
    loss = lambda e: data_to_data_cross_entropy(e @ proxies.T, e, labels)  # noqa: E731
    assert loss(at_own) < loss(at_other)
    embeddings = at_own.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss(embeddings), embeddings)
    assert torch.all(grad[:, 3] == 0)  # nothing pushes along the unused direction
    # easy positives (cosine 1 > 0.98): the proxy term is flat; what is left is the negatives, each at similarity 0:
    # log(1 + the number of images of other classes), 2 for the 0s and 3 for the 1 and the 2
    expected = torch.tensor([3.0, 4.0, 4.0, 3.0]).log().mean()
    assert loss(at_own).item() == pytest.approx(expected.item(), abs=1e-6)
    # the second 0 moved onto the first: same class, so no negative term changes
    moved = at_own.clone()
    moved[3] = torch.nn.functional.normalize(torch.tensor([1.0, 0.0, 0.0, 0.1]), dim=0)
    assert loss(moved).item() == pytest.approx(loss(at_own).item(), abs=1e-6)


def test_reacgan_trains_with_its_embedding_head_and_refuses_a_mismatched_d(make_cfg):
    d2d = ("model.class_loss=data_to_data", "model.discriminator.embedding_dim=16")
    gan = train(make_cfg(small("acgan", "trainer.max_steps=2", *d2d)))["model"]
    labels = torch.arange(8) % 10
    _, aux = gan.discriminate(gan.generate(labels=labels), labels)
    cosines, embeddings = aux
    assert cosines.shape == (8, 10) and embeddings.shape == (8, 16)
    assert torch.allclose(embeddings.norm(dim=1), torch.ones(8), atol=1e-5) and cosines.abs().max() <= 1 + 1e-5
    assert gan.class_logits(aux) is cosines  # conditional accuracy reads the nearest proxy
    with pytest.raises(InstantiationException, match="needs model.discriminator.embedding_dim > 0"):
        train(make_cfg(small("acgan", "trainer.max_steps=1", "model.class_loss=data_to_data")))
