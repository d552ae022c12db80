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

``class_loss=data_to_data`` is ReACGAN's fix (Kang et al. 2021): D embeds each image on the unit sphere, each
class has a unit proxy there, and the class term is the data-to-data cross-entropy (``data_to_data_cross_entropy``)
instead of CE: each embedding is pulled to its class's proxy only until their cosine reaches ``margin`` and
pushed from the other classes' images in the batch, so an image that D already classifies surely earns G nothing
more (where CE keeps rewarding it), and G is not drawn to one sure image per class. D takes the term on real
images, G on its fakes (``fake_class_weight`` applies as with CE).
"""

from __future__ import annotations

from typing import Annotated, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ganlab.config.bounds import Bound, check_arguments
from ganlab.models.cgan import ConditionalGAN
from ganlab.models.gan import split_scores

CLASS_LOSSES = ("cross_entropy", "data_to_data")


def data_to_data_cross_entropy(
    cosines: Tensor, embeddings: Tensor, labels: Tensor, temperature: float = 0.5, margin: float = 0.98
) -> Tensor:
    """ReACGAN's D2D-CE (Kang et al. 2021, eq. 7), mean over the batch, from the cosines of each unit embedding to
    the class proxies (B, N), the unit embeddings (B, E) and the labels (B,):

        -log( exp(min(cos(e_i, v_yi) - m_p, 0) / T)
              / (exp(min(cos(e_i, v_yi) - m_p, 0) / T) + sum_{j: y_j != y_i} exp(max(e_i . e_j - (1 - m_p), 0) / T)) )

    The proxy term stops pulling once the cosine passes the margin m_p (easy positives), and a pair of images of
    other classes pushes only while its similarity exceeds 1 - m_p (easy negatives); images of the same class are
    not negatives (false negatives removed).
    """
    positive = (cosines.gather(1, labels[:, None]).squeeze(1) - margin).clamp(max=0) / temperature  # (B,)
    similar = (embeddings @ embeddings.T - (1 - margin)).clamp(min=0) / temperature  # (B, B)
    negatives = similar.masked_fill(labels[:, None] == labels[None, :], float("-inf"))  # other classes only
    return (torch.logsumexp(torch.cat([positive[:, None], negatives], dim=1), dim=1) - positive).mean()


class ACGAN(ConditionalGAN):
    headline_metric = "val/accuracy"  # D's class head on held-out real images

    def __init__(
        self,
        class_weight: Annotated[float, Bound(at_least=0)] = 1.0,  # the auxiliary class cross-entropy, for D and G
        fake_class_weight: Annotated[float, Bound(at_least=0)] = 1.0,  # D's class term on fakes, relative to real
        twin_classifier: bool = False,  # TAC-GAN: a twin class head of fakes, whose cross-entropy G maximizes
        twin_weight: Annotated[float, Bound(at_least=0)] = 1.0,  # the twin's terms, relative to class_weight
        class_loss: str = "cross_entropy",  # or "data_to_data": ReACGAN's D2D-CE in D's unit embedding
        temperature: Annotated[float, Bound(above=0)] = 0.5,  # D2D-CE's T (ReACGAN's)
        margin: Annotated[float, Bound(above=0, at_most=1)] = 0.98,  # D2D-CE's positive margin m_p (ReACGAN's)
        **base: Any,  # ConditionalGAN's and GAN's arguments
    ):
        if bool(base["discriminator"].get("twin_head", False)) != twin_classifier:
            raise ValueError(
                f"model.twin_classifier={twin_classifier} needs model.discriminator.twin_head={twin_classifier} "
                "(conf/model/acgan.yaml sets it from model.twin_classifier: drop the override of twin_head)"
            )
        if class_loss not in CLASS_LOSSES:
            raise ValueError(f"model.class_loss must be one of {CLASS_LOSSES}, got {class_loss!r}")
        if (class_loss == "data_to_data") != bool(base["discriminator"].get("embedding_dim", 0)):
            raise ValueError(
                f"model.class_loss={class_loss} needs model.discriminator.embedding_dim "
                f"{'> 0 (ReACGAN: 512)' if class_loss == 'data_to_data' else '= 0'}: D's unit embedding is what "
                f"the data-to-data cross-entropy compares"
            )
        super().__init__(**base)
        check_arguments(ACGAN.__init__, locals(), "model.")
        self.track_accuracy(self.num_classes)  # D's class head on held-out real images

    def discriminate(self, images: Tensor, labels: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
        return split_scores(self.discriminator(images))  # (score (B,), (class logits (B, N),)): D sees no label

    def class_logits(self, aux: tuple[Tensor, ...]) -> Tensor:
        return aux[0]

    def class_term(self, aux: tuple[Tensor, ...], labels: Tensor) -> Tensor:
        """The class term on one batch's auxiliary outputs: CE on the class logits, or ReACGAN's D2D-CE."""
        if self.hparams.get("class_loss", "cross_entropy") == "cross_entropy":
            return F.cross_entropy(aux[0], labels)
        return data_to_data_cross_entropy(aux[0], aux[1], labels, self.hparams.temperature, self.hparams.margin)

    def discriminator_terms(
        self, real_aux: tuple[Tensor, ...], fake_aux: tuple[Tensor, ...], labels: Tensor
    ) -> dict[str, Tensor]:
        # On fakes too in Odena et al.; but then D's head also learns to read G's mistakes as the asked-for class,
        # so G is never pushed to fix them: fake_class_weight=0 keeps the head a classifier of real digits.
        class_loss = self.class_term(real_aux, labels) + self.hparams.fake_class_weight * self.class_term(
            fake_aux, labels
        )
        terms = {"loss/d_class": self.hparams.class_weight * class_loss}
        if self.hparams.twin_classifier:  # the twin head learns which class each fake was drawn for
            weight = self.hparams.class_weight * self.hparams.twin_weight
            terms["loss/d_twin"] = weight * F.cross_entropy(fake_aux[1], labels)
        return terms

    def generator_terms(self, fake_aux: tuple[Tensor, ...], labels: Tensor) -> dict[str, Tensor]:
        terms = {"loss/g_class": self.hparams.class_weight * self.class_term(fake_aux, labels)}
        if self.hparams.twin_classifier:  # G makes its fakes hard to tell apart by class for the twin
            weight = self.hparams.class_weight * self.hparams.twin_weight
            terms["loss/g_twin"] = -weight * F.cross_entropy(fake_aux[1], labels)
        return terms
