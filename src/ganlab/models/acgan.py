"""ACGAN (Odena et al. 2017): G(z, y) as in cGAN; D judges the image alone and predicts its class with an
auxiliary head, and both players add the class cross-entropy to their adversarial loss:

    D: loss.d_loss(real, fake) + class_weight * (CE(D_class(x), y) + fake_class_weight * CE(D_class(G(z, y)), y))
    G: loss.g_loss(fake) + class_weight * CE(D_class(G(z, y)), y)

The class term alone rewards G for the images D classifies most surely, so ACGAN draws few images per class
(its known failure). ``twin_classifier=true`` is TAC-GAN's fix (Gong et al. 2019): a twin head D_twin learns
to classify the fakes, and G maximizes its cross-entropy, which cancels the conditional-entropy term that
the class term adds to G's objective:

    D: ... + class_weight * twin_weight * CE(D_twin(G(z, y)), y)
    G: ... - class_weight * twin_weight * CE(D_twin(G(z, y)), y)

``twin_weight`` < 1 keeps part of the class term's pull toward surely classified images: variety against
conditional accuracy (docs/variants.md).
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
        twin_classifier: bool = False,  # TAC-GAN: a twin class head of fakes, whose cross-entropy G maximizes
        twin_weight: Annotated[float, Bound(at_least=0)] = 1.0,  # the twin's terms, relative to class_weight
        **base: Any,  # ConditionalGAN's and GAN's arguments
    ):
        if bool(base["discriminator"].get("twin_head", False)) != twin_classifier:
            raise ValueError(
                f"model.twin_classifier={twin_classifier} needs model.discriminator.twin_head={twin_classifier} "
                "(conf/model/acgan.yaml sets it from model.twin_classifier: drop the override of twin_head)"
            )
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
        terms = {"loss/d_class": self.hparams.class_weight * class_loss}
        if self.hparams.twin_classifier:  # the twin head learns which class each fake was drawn for
            weight = self.hparams.class_weight * self.hparams.twin_weight
            terms["loss/d_twin"] = weight * F.cross_entropy(fake_aux[1], labels)
        return terms

    def generator_terms(self, fake_aux: tuple[Tensor, ...], labels: Tensor) -> dict[str, Tensor]:
        terms = {"loss/g_class": self.hparams.class_weight * F.cross_entropy(fake_aux[0], labels)}
        if self.hparams.twin_classifier:  # G makes its fakes hard to tell apart by class for the twin
            weight = self.hparams.class_weight * self.hparams.twin_weight
            terms["loss/g_twin"] = -weight * F.cross_entropy(fake_aux[1], labels)
        return terms
