"""ACGAN (Odena et al. 2017): G(z, y) as in cGAN; D judges the image alone and predicts its class with an
auxiliary head, and both players add the class cross-entropy to their adversarial loss:

    D: loss.d_loss(real, fake) + class_weight * (CE(D_class(x), y) + fake_class_weight * CE(D_class(G(z, y)), y))
    G: loss.g_loss(fake) + class_weight * CE(D_class(G(z, y)), y)
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from ganlab.models.cgan import ConditionalGAN
from ganlab.models.gan import split_scores


class ACGAN(ConditionalGAN):
    headline_metric = "val/accuracy"  # D's class head on held-out real images

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
        self.track_accuracy(num_classes)  # D's class head on held-out real images

    def discriminate(self, images: Tensor, labels: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
        return split_scores(self.discriminator(images))  # (score (B,), (class logits (B, N),)): D sees no label

    def class_logits(self, aux: tuple[Tensor, ...]) -> Tensor:
        return aux[0]

    def discriminator_terms(
        self, real_aux: tuple[Tensor, ...], fake_aux: tuple[Tensor, ...], labels: Tensor
    ) -> dict[str, Tensor]:
        # On fakes too in Odena et al.; but then D's head also learns to read G's mistakes as the asked-for class,
        # so G is never pushed to fix them: fake_class_weight=0 keeps the head a classifier of real digits.
        class_loss = F.cross_entropy(real_aux[0], labels) + self.hparams.fake_class_weight * F.cross_entropy(
            fake_aux[0], labels
        )
        return {"loss/d_class": self.hparams.class_weight * class_loss}

    def generator_terms(self, fake_aux: tuple[Tensor, ...], labels: Tensor) -> dict[str, Tensor]:
        return {"loss/g_class": self.hparams.class_weight * F.cross_entropy(fake_aux[0], labels)}
