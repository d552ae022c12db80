"""ACGAN (Odena et al. 2017): G(z, y) as in cGAN; D judges the image alone and predicts its class with an
auxiliary head, and both players add the class cross-entropy to their adversarial loss:

    D: loss.d_loss(real, fake) + class_weight * (CE(D_class(x), y) + fake_class_weight * CE(D_class(G(z, y)), y))
    G: loss.g_loss(fake) + class_weight * CE(D_class(G(z, y)), y)
"""

from __future__ import annotations

from typing import Annotated, Any

import torch.nn.functional as F
from torch import Tensor

from ganlab.config.bounds import Bound, check_arguments
from ganlab.models.cgan import ConditionalGAN
from ganlab.models.gan import split_scores


class ACGAN(ConditionalGAN):
    headline_metric = "val/accuracy"  # D's class head on held-out real images

    def __init__(
        self,
        class_weight: Annotated[float, Bound(at_least=0)] = 1.0,  # the auxiliary class cross-entropy, for D and G
        fake_class_weight: Annotated[float, Bound(at_least=0)] = 1.0,  # D's class term on fakes, relative to real
        **base: Any,  # ConditionalGAN's and GAN's arguments
    ):
        super().__init__(**base)
        check_arguments(ACGAN.__init__, locals(), "model.")
        self.track_accuracy(self.num_classes)  # D's class head on held-out real images

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
