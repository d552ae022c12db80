"""InfoGAN's networks (Chen et al. 2016) sized for 28x28: a discriminator trunk with an adversarial head, and Q, a
separate head on the trunk's features that recovers the latent codes (categorical logits and the continuous
codes' Gaussian means and log standard deviations).

``Generator`` is the paper's MNIST G on the full latent (noise, one-hot categorical code, continuous codes
concatenated): a DCGAN generator with a 1024-wide dense layer first; only its input is structured.

Q is its own module (``QHead``), not a layer of the discriminator, so that a model can give it its own optimizer
(or learning rate). The model calls ``discriminator(images) -> (score, features)`` and then ``q_head(features)``.
"""

from __future__ import annotations

from torch import Tensor, nn

from ganlab.networks.dcgan import discriminator_trunk
from ganlab.networks.layers import dcgan_init
from ganlab.networks.stabilizers import spectral_normalize


class Generator(nn.Module):
    """The InfoGAN paper's MNIST generator (Chen et al. 2016, table 1): z -> FC ``hidden`` -> BN -> ReLU -> FC
    (2c x H/4 x W/4) -> BN -> ReLU -> 4x4 stride-2 deconv c -> BN -> ReLU -> 4x4 stride-2 deconv C -> tanh
    (c = base_channels: 64, and 2c = 128 as in the paper). ``dcgan.Generator`` without the 1024-wide dense layer."""

    def __init__(
        self,
        latent_dim: int = 74,
        base_channels: int = 64,
        hidden: int = 1024,
        image_shape: tuple[int, int, int] = (1, 28, 28),
    ):
        super().__init__()
        channels, height, width = image_shape
        self.start_shape = (2 * base_channels, height // 4, width // 4)
        start = 2 * base_channels * (height // 4) * (width // 4)
        self.project = nn.Sequential(
            nn.Linear(latent_dim, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Linear(hidden, start, bias=False),
            nn.BatchNorm1d(start),
            nn.ReLU(),
        )
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(2 * base_channels, base_channels, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(base_channels),
            nn.ReLU(),
            nn.ConvTranspose2d(base_channels, channels, 4, stride=2, padding=1),
            nn.Tanh(),
        )
        self.apply(dcgan_init)

    def forward(self, z: Tensor) -> Tensor:
        return self.upsample(self.project(z).view(z.shape[0], *self.start_shape))  # (B, C, H, W)


class Discriminator(nn.Module):
    """(B, C, H, W) -> trunk (``dcgan.discriminator_trunk``) -> (B, F) -> [dense: (B, hidden)] -> (B,) logit.

    Returns (score (B,), features): the features are what the adversarial head reads, and what Q reads (the paper:
    Q shares every layer of D but the last). ``hidden > 0`` adds the paper's fully connected layer (1024 units,
    LeakyReLU, BatchNorm with ``batchnorm``) between the convs and the heads; 0 feeds the flattened conv maps.
    ``spectral_norm``: on the trunk, the dense layer and the adversarial head (Q is built apart and left alone).
    """

    def __init__(
        self,
        base_channels: int = 64,
        dropout: float = 0.0,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        spectral_norm: bool = False,
        batchnorm: bool = False,
        deep: bool = False,
        hidden: int = 0,
    ):
        super().__init__()
        trunk, feature_dim = discriminator_trunk(base_channels, dropout, image_shape, batchnorm, deep)
        if hidden:
            trunk.append(nn.Linear(feature_dim, hidden, bias=not batchnorm))
            if batchnorm:
                trunk.append(nn.BatchNorm1d(hidden))
            trunk.append(nn.LeakyReLU(0.2))
            feature_dim = hidden
        self.trunk = trunk  # (B, C, H, W) -> (B, feature_dim)
        self.feature_dim = feature_dim
        self.adversarial = nn.Linear(feature_dim, 1)  # (B, feature_dim) -> (B, 1)
        self.apply(dcgan_init)
        if spectral_norm:
            spectral_normalize(self)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        features = self.trunk(images)  # (B, F)
        return self.adversarial(features).squeeze(1), features  # (B,), (B, F)


class QHead(nn.Module):
    """Q(c | x) on D's features: (B, F) -> dense (hidden) -> [BatchNorm] -> LeakyReLU -> linear ->
    (categorical logits (B, K), continuous means (B, M), continuous log-stds (B, M)).

    ``hidden = 0``: one linear layer on the features. ``detach_features``: Q's loss does not reach the trunk
    (then Q alone, not D's shared layers, learns to read the codes)."""

    def __init__(
        self,
        feature_dim: int,
        num_categories: int = 10,
        num_continuous: int = 2,
        hidden: int = 128,
        batchnorm: bool = True,
        detach_features: bool = False,
    ):
        super().__init__()
        self.num_categories, self.num_continuous = num_categories, num_continuous
        self.detach_features = detach_features
        out = num_categories + 2 * num_continuous
        if hidden:
            self.net = nn.Sequential(
                nn.Linear(feature_dim, hidden, bias=not batchnorm),
                *([nn.BatchNorm1d(hidden)] if batchnorm else []),
                nn.LeakyReLU(0.2),
                nn.Linear(hidden, out),
            )
        else:
            self.net = nn.Linear(feature_dim, out)
        self.apply(dcgan_init)

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if self.detach_features:
            features = features.detach()
        out = self.net(features)  # (B, K + 2M)
        k, m = self.num_categories, self.num_continuous
        log_std = out[:, k + m :].clamp(-5.0, 2.0)  # (B, M): bounded, so the NLL cannot run off early in training
        return out[:, :k], out[:, k : k + m], log_std  # (B, K), (B, M), (B, M)
