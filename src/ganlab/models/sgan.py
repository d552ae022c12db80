"""The semi-supervised GAN (Odena 2016; Salimans et al. 2016): D classifies real images into N classes and
tells them from G's fakes, so the unlabelled images and the fakes teach the classifier too.

With N logits l(x) and the fake class's logit implied as 0 (Salimans et al., section 5), D's real/fake logit
is logsumexp_k l_k(x) (``networks/improved_gan.py``), and the objectives are
    D: cross-entropy(l(x_labelled), y) + unlabelled_weight * loss.d_loss(lse(x_unlabelled), lse(G(z)))
    G: feature matching ||E f(x) - E f(G(z))||^2 on D's last hidden layer, or loss.g_loss(lse(G(z))).
With loss=nsgan and unlabelled_weight=0.5 this is exactly the objective of Salimans et al.'s code. Training
batches come from ``data.labels_per_class``: each chunk is B unlabelled then B labelled images (labels -1 mark
the unlabelled ones). With every label kept, every image also serves as an unlabelled one.
"""

from __future__ import annotations

from typing import Annotated, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ganlab.config.bounds import Bound, check_arguments
from ganlab.data.batches import LabelledBatch
from ganlab.data.idx_datamodule import UNLABELLED
from ganlab.models.gan import GAN


class SemiSupervisedGAN(GAN):
    headline_metric = "val/accuracy"  # D's class head on held-out real images

    def __init__(
        self,
        num_classes: Annotated[int, Bound(at_least=1)] = 10,
        unlabelled_weight: Annotated[float, Bound(at_least=0)] = 0.5,  # the real/fake term; 0: D a plain classifier
        feature_matching: bool = True,  # G matches D's mean features of real images instead of fooling D
        prior: str = "uniform",
        **base: Any,  # GAN's arguments
    ):
        super().__init__(prior=prior, **base)
        check_arguments(SemiSupervisedGAN.__init__, locals(), "model.")
        self.track_accuracy(num_classes)  # D's classifier on held-out real images: the point of this model

    def class_logits(self, aux: tuple[Tensor, ...]) -> Tensor:
        return aux[0]  # D returns (score, class logits, features)

    @staticmethod
    def _unlabelled(labels: Tensor) -> Tensor:
        unlabelled = labels == UNLABELLED  # (B,) bool
        return (
            unlabelled if unlabelled.any() else torch.ones_like(unlabelled)
        )  # every label kept: all serve as unlabelled too

    def discriminator_loss(self, batch: LabelledBatch) -> tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]:
        real, labels = batch
        labelled, unlabelled = labels != UNLABELLED, self._unlabelled(labels)
        with torch.no_grad():
            fake = self(*self.generator_inputs(int(unlabelled.sum())))  # (U, C, H, W): as many as unlabelled reals
        real_scores, (real_classes, _) = self.discriminate(real, labels)  # (B,), (B, N)
        fake_scores, _ = self.discriminate(fake, labels)  # (U,)
        class_loss = F.cross_entropy(real_classes[labelled], labels[labelled]) if labelled.any() else real.new_zeros(())
        real_scores = real_scores[unlabelled]  # (U,)
        d_loss = self.loss.d_loss(real_scores, fake_scores)
        penalty = self.penalty_terms(lambda images: self.discriminate(images, labels)[0], real[unlabelled], fake)
        total = class_loss + self.hparams.unlabelled_weight * sum(penalty.values(), d_loss)
        return total, real_scores, fake_scores, {"loss/d": d_loss, **penalty, "loss/d_class": class_loss}

    def generator_loss(self, batch: LabelledBatch) -> tuple[Tensor, dict[str, Tensor]]:
        real, labels = batch
        unlabelled_real = real[self._unlabelled(labels)]  # (U, C, H, W)
        fake_scores, (_, fake_features) = self.discriminate(self(*self.generator_inputs(len(unlabelled_real))), labels)
        if not self.hparams.feature_matching:
            g_loss = self.loss.g_loss(fake_scores)
            return g_loss, {"loss/g": g_loss}
        with torch.no_grad():
            _, (_, real_features) = self.discriminate(
                unlabelled_real, labels
            )  # (U, F): a target, not trained through here
        g_loss = (real_features.mean(0) - fake_features.mean(0)).pow(2).mean()
        return g_loss, {"loss/g": g_loss}
