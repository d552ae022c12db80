"""Class-conditional generators and discriminators (DCGAN-sized for 28x28) for cGAN and ACGAN.

G(z, y): a learned class embedding concatenated with z (Mirza & Osindero 2014 concatenate the one-hot y),
then the DCGAN generator. D(x, y) for cGAN is a projection discriminator (Miyato & Koyama 2018):
logit = w . phi(x) + embed(y) . phi(x), which conditions D on y by an inner product with its features.
ACGAN's D takes no label and predicts it instead: an adversarial head and an auxiliary class head.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.networks import dcgan
from ganlab.networks.layers import dcgan_init
from ganlab.networks.stabilizers import spectral_normalize


class Generator(nn.Module):
    """(z, y) -> [z, embed(y)] -> the DCGAN generator -> (B, C, H, W) in [-1, 1]."""

    def __init__(
        self,
        num_classes: int = 10,
        latent_dim: int = 100,
        embed_dim: int = 10,
        base_channels: int = 64,
        image_shape: tuple[int, int, int] = (1, 28, 28),
    ):
        super().__init__()
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.body = dcgan.Generator(
            latent_dim=latent_dim + embed_dim, base_channels=base_channels, image_shape=image_shape
        )

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:
        return self.body(torch.cat([z, self.embed(labels)], dim=1))  # (B, latent + embed) -> (B, C, H, W)


class ProjectionDiscriminator(nn.Module):
    """(x, y) -> phi(x) (B, F) -> logit w . phi(x) + embed(y) . phi(x), raw (B,)."""

    def __init__(
        self,
        num_classes: int = 10,
        base_channels: int = 64,
        dropout: float = 0.3,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        minibatch_std: int = 0,  # group size of a minibatch standard deviation map (dcgan.discriminator_trunk)
        deep: bool = False,  # the default recipe's five-conv trunk (dcgan.discriminator_trunk)
        spectral_norm: bool = False,  # every conv and linear weight over its largest singular value
    ):
        super().__init__()
        self.features, feature_dim = dcgan.discriminator_trunk(
            base_channels, dropout, image_shape, deep=deep, minibatch_std=minibatch_std
        )
        self.unconditional = nn.Linear(feature_dim, 1)
        self.class_projection = nn.Embedding(num_classes, feature_dim)
        self.apply(dcgan_init)
        nn.init.normal_(self.class_projection.weight, 0.0, 0.02)
        if spectral_norm:
            spectral_normalize(self)

    def forward(self, images: Tensor, labels: Tensor) -> Tensor:
        features = self.features(images)  # (B, F)
        projection = (self.class_projection(labels) * features).sum(dim=1)  # (B,)
        return self.unconditional(features).squeeze(1) + projection  # (B,)


class AuxiliaryClassifierDiscriminator(nn.Module):
    """x -> phi(x) (B, F) -> (real/fake logit (B,), class logits (B, N)): ACGAN's D (Odena et al. 2017).
    ``twin_head``: a second class head (B, N) after those, TAC-GAN's twin classifier of fakes (Gong et al. 2019).
    ``embedding_dim`` > 0: ReACGAN's head (Kang et al. 2021) instead of the linear class head: phi(x) is projected
    to a unit embedding e (B, E), each class has a learned unit proxy, and the class logits are the cosines of e
    to the proxies (B, N); the outputs are (logit, cosines, e), for the data-to-data cross-entropy."""

    def __init__(
        self,
        num_classes: int = 10,
        base_channels: int = 64,
        dropout: float = 0.3,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        twin_head: bool = False,
        minibatch_std: int = 0,  # group size of a minibatch standard deviation map (dcgan.discriminator_trunk)
        embedding_dim: int = 0,  # > 0: ReACGAN's unit embedding and class proxies instead of the linear class head
        deep: bool = False,  # the default recipe's five-conv trunk (dcgan.discriminator_trunk)
        spectral_norm: bool = False,  # every conv and linear weight over its largest singular value
    ):
        super().__init__()
        if embedding_dim and twin_head:
            raise ValueError(
                "model.discriminator: ReACGAN's embedding head and TAC-GAN's twin head are two fixes; pick one"
            )
        self.features, feature_dim = dcgan.discriminator_trunk(
            base_channels, dropout, image_shape, deep=deep, minibatch_std=minibatch_std
        )
        self.adversarial = nn.Linear(feature_dim, 1)
        # ReACGAN: the embedding, and the proxies as the rows of a bias-free linear layer (B, E) -> (B, N).
        self.embed = nn.Linear(feature_dim, embedding_dim) if embedding_dim else None
        self.classify = nn.Linear(embedding_dim or feature_dim, num_classes, bias=not embedding_dim)
        self.classify_fake = nn.Linear(feature_dim, num_classes) if twin_head else None
        self.apply(dcgan_init)
        if spectral_norm:
            spectral_normalize(self)

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        features = self.features(images)  # (B, F)
        logit = self.adversarial(features).squeeze(1)  # (B,)
        if self.embed is not None:
            embedding = F.normalize(self.embed(features), dim=1)  # (B, E)
            return logit, embedding @ F.normalize(self.classify.weight, dim=1).T, embedding  # cosines (B, N)
        outputs = (logit, self.classify(features))  # (B,), (B, N)
        return outputs if self.classify_fake is None else (*outputs, self.classify_fake(features))
