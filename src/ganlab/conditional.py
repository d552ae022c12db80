"""Class-conditional GANs: cGAN (Mirza & Osindero 2014) and ACGAN (Odena et al. 2017).

Both generate G(z, y) for a class y. In the discriminator step the fakes are drawn for the real chunk's own
labels, so real and fake share one label distribution (the data's) and a gradient penalty's interpolates have
one label each. cGAN's D judges the pair (x, y); ACGAN's D judges x alone and predicts y, and both players
add the class cross-entropy on their side:
    D: loss.d_loss(real, fake) + class_weight * (CE(D_class(x), y) + fake_class_weight * CE(D_class(G(z, y)), y))
    G: loss.g_loss(fake) + class_weight * CE(D_class(G(z, y)), y)
Sample grids show one row per class, with the same noise down each column.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.classification import MulticlassAccuracy

from ganlab.module import GAN


class ConditionalGAN(GAN):
    def __init__(
        self,
        generator: dict[str, Any],
        discriminator: dict[str, Any],
        loss: dict[str, Any],
        optimizer: dict[str, Any],
        num_classes: int = 10,
        samples_per_class: int = 10,  # the sample grid: one row per class, this many images a row
        latent_dim: int = 100,
        prior: str = "normal",
    ):
        super().__init__(generator, discriminator, loss, optimizer, latent_dim, prior, num_fixed_samples=num_classes * samples_per_class)
        self.num_classes = num_classes
        self.grid_nrow = samples_per_class
        self.fixed_noise = self.sample_latent(samples_per_class).repeat(num_classes, 1)  # (N * S, latent): a column shares z
        self.register_buffer("fixed_labels", torch.arange(num_classes).repeat_interleave(samples_per_class))  # (N * S,): row i is class i

    def on_fit_start(self) -> None:
        if getattr(self.trainer.datamodule, "labels_per_class", None) is not None:
            raise ValueError(f"{type(self).__name__} conditions on every training label; set data.labels_per_class=null (hidden labels are for model=sgan)")

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:
        return self.generator(z, labels)  # (B, latent), (B,) -> (B, C, H, W) in [-1, 1]

    def classes_in_turn(self, num: int) -> Tensor:
        return torch.arange(num, device=self.device) % self.num_classes  # (num,): 0, 1, ..., N-1, 0, 1, ...

    def generator_inputs(self, num: int) -> tuple[Tensor, ...]:
        return self.sample_latent(num), self.classes_in_turn(num)

    def check_labels(self, labels: Tensor) -> Tensor:
        labels = torch.as_tensor(labels, device=self.device).long()
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f"labels must be class indices in [0, {self.num_classes}), got values {labels.min().item()}..{labels.max().item()}")
        return labels

    @torch.no_grad()
    def generate(self, num: int | None = None, z: Tensor | None = None, labels: Tensor | None = None) -> Tensor:
        """Images of the given classes (labels (B,)); without labels, classes 0, 1, ..., N-1, 0, 1, ... in turn."""
        z = self.sample_latent(num if num is not None else len(labels)) if z is None else z.to(self.device)
        labels = self.classes_in_turn(len(z)) if labels is None else self.check_labels(labels)
        if len(labels) != len(z):
            raise ValueError(f"got {len(labels)} labels for {len(z)} latent vectors; pass one label per image")
        was_training = self.generator.training
        self.generator.eval()
        images = self.generator(z, labels)
        self.generator.train(was_training)
        return images

    def sample_grid_images(self) -> Tensor:
        return self.generate(z=self.fixed_noise, labels=self.fixed_labels)

    def discriminator_loss(self, real: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]:
        with torch.no_grad():
            fake = self.generator(self.sample_latent(len(real)), labels)  # fakes of the real chunk's classes
        real_scores, fake_scores = self.discriminator(real, labels), self.discriminator(fake, labels)  # (B,), (B,)
        d_loss = self.loss.d_loss(real_scores, fake_scores)
        penalty = self.loss.d_penalty(lambda images: self.discriminator(images, labels), real, fake)
        return d_loss + penalty, real_scores, fake_scores, {"loss/d": d_loss, "loss/d_penalty": penalty}

    def generator_loss(self, real: Tensor, labels: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        g_loss = self.loss.g_loss(self.discriminator(self.generator(self.sample_latent(len(real)), labels), labels))
        return g_loss, {"loss/g": g_loss}

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, labels = batch
        scores = self.discriminator(images, labels)
        self.log("val/D(x)", self.loss.d_output(scores).mean(), sync_dist=True, batch_size=len(images))


class ACGAN(ConditionalGAN):
    def __init__(
        self,
        generator: dict[str, Any],
        discriminator: dict[str, Any],
        loss: dict[str, Any],
        optimizer: dict[str, Any],
        num_classes: int = 10,
        class_weight: float = 1.0,  # weight of the auxiliary class cross-entropy, for D and for G
        fake_class_weight: float = 1.0,  # D's class cross-entropy on fakes, relative to real (1: Odena et al.)
        samples_per_class: int = 10,
        latent_dim: int = 100,
        prior: str = "normal",
    ):
        super().__init__(generator, discriminator, loss, optimizer, num_classes, samples_per_class, latent_dim, prior)
        self.val_accuracy = MulticlassAccuracy(num_classes, average="micro")
        self.test_accuracy = MulticlassAccuracy(num_classes, average="micro")

    def discriminator_loss(self, real: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]:
        with torch.no_grad():
            fake = self.generator(self.sample_latent(len(real)), labels)
        (real_scores, real_classes), (fake_scores, fake_classes) = self.discriminator(real), self.discriminator(fake)  # (B,), (B, N)
        d_loss = self.loss.d_loss(real_scores, fake_scores)
        # On fakes too in Odena et al.; but then D's head also learns to read G's mistakes as the asked-for class,
        # so G is never pushed to fix them: fake_class_weight=0 keeps the head a classifier of real digits.
        class_loss = F.cross_entropy(real_classes, labels) + self.hparams.fake_class_weight * F.cross_entropy(fake_classes, labels)
        penalty = self.loss.d_penalty(lambda images: self.discriminator(images)[0], real, fake)
        total = d_loss + penalty + self.hparams.class_weight * class_loss
        return total, real_scores, fake_scores, {"loss/d": d_loss, "loss/d_penalty": penalty, "loss/d_class": class_loss}

    def generator_loss(self, real: Tensor, labels: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        fake_scores, fake_classes = self.discriminator(self.generator(self.sample_latent(len(real)), labels))
        g_loss = self.loss.g_loss(fake_scores)
        class_loss = F.cross_entropy(fake_classes, labels)
        return g_loss + self.hparams.class_weight * class_loss, {"loss/g": g_loss, "loss/g_class": class_loss}

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, labels = batch
        scores, classes = self.discriminator(images)
        self.val_accuracy(classes, labels)  # the auxiliary classifier on held-out real images
        self.log("val/accuracy", self.val_accuracy, batch_size=len(images))
        self.log("val/D(x)", self.loss.d_output(scores).mean(), sync_dist=True, batch_size=len(images))

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, labels = batch
        self.test_accuracy(self.discriminator(images)[1], labels)
        self.log("test/accuracy", self.test_accuracy, batch_size=len(images))
