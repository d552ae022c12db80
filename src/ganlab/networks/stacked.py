"""StackGAN's networks (Zhang et al. 2017), sized for 28x28 images: conditioning augmentation, the stage-I
generator (noise and text to 14x14), the stage-II generator (a stage-I image and text to 28x28) and a
matching-aware discriminator per stage.

The paper's stage I draws 64x64 from a 4x4 seed and stage II refines it to 256x256 through a 16x16 encoding and
residual blocks; here the same shapes at a quarter of the resolution: a 7x7 seed to 14x14, then a 7x7 encoding
and residual blocks up to 28x28. Nearest-neighbour upsampling then a 3x3 convolution, as in the paper.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ATTRIBUTE_CLASSES = (10, 3, 3, 2)  # what a discriminator's auxiliary head predicts: class, thickness, slant, size


class ConditioningAugmentation(nn.Module):
    """Text embedding -> (c ~ N(mu, diag(sigma^2)), mu, log sigma^2): smooth conditioning from few captions.
    The KL term to N(0, I) is ``kl_divergence(mu, log_var)``."""

    def __init__(self, text_dim: int, condition_dim: int = 16):
        super().__init__()
        self.fc = nn.Linear(text_dim, 2 * condition_dim)

    def forward(self, text: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        mu, log_var = F.leaky_relu(self.fc(text), 0.2).chunk(2, dim=1)  # (B, c) each
        condition = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)
        return condition, mu, log_var


def kl_divergence(mu: Tensor, log_var: Tensor) -> Tensor:
    """KL(N(mu, sigma^2) || N(0, I)), summed over dimensions, averaged over the batch."""
    return 0.5 * (mu.pow(2) + log_var.exp() - 1 - log_var).sum(1).mean()


def up_block(cin: int, cout: int) -> nn.Sequential:
    """(B, cin, H, W) -> (B, cout, 2H, 2W): nearest upsampling, 3x3 convolution, BatchNorm, ReLU."""
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(True),
    )


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x + self.body(x))


class StageIGenerator(nn.Module):
    """(z (B, latent_dim), c (B, condition_dim)) -> (B, C, 14, 14) in [-1, 1]."""

    def __init__(self, latent_dim: int = 64, condition_dim: int = 16, base_channels: int = 32, channels: int = 1):
        super().__init__()
        w = base_channels
        self.seed = nn.Sequential(
            nn.Linear(latent_dim + condition_dim, 4 * w * 7 * 7, bias=False),
            nn.BatchNorm1d(4 * w * 7 * 7),
            nn.ReLU(True),
        )
        self.body = nn.Sequential(
            up_block(4 * w, 2 * w),  # (B, 2w, 14, 14)
            nn.Conv2d(2 * w, w, 3, padding=1, bias=False),
            nn.BatchNorm2d(w),
            nn.ReLU(True),
            nn.Conv2d(w, channels, 3, padding=1),
            nn.Tanh(),
        )
        self.base_channels = w

    def forward(self, z: Tensor, condition: Tensor) -> Tensor:
        seed = self.seed(torch.cat([z, condition], 1)).view(len(z), 4 * self.base_channels, 7, 7)
        return self.body(seed)


class StageIIGenerator(nn.Module):
    """(stage-I image (B, C, 14, 14), c (B, condition_dim)) -> (B, C, 28, 28) in [-1, 1]: the image encoded to 7x7,
    joined with the text condition, refined by residual blocks, decoded at twice the stage-I resolution."""

    def __init__(self, condition_dim: int = 16, base_channels: int = 32, num_blocks: int = 2, channels: int = 1):
        super().__init__()
        w = base_channels
        self.encode = nn.Sequential(
            nn.Conv2d(channels, w, 3, padding=1),
            nn.ReLU(True),
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1, bias=False),  # (B, 2w, 7, 7)
            nn.BatchNorm2d(2 * w),
            nn.ReLU(True),
        )
        self.join = nn.Sequential(
            nn.Conv2d(2 * w + condition_dim, 2 * w, 3, padding=1, bias=False), nn.BatchNorm2d(2 * w), nn.ReLU(True)
        )
        self.residual = nn.Sequential(*(ResidualBlock(2 * w) for _ in range(num_blocks)))
        self.decode = nn.Sequential(
            up_block(2 * w, w),  # (B, w, 14, 14)
            up_block(w, w),  # (B, w, 28, 28)
            nn.Conv2d(w, channels, 3, padding=1),
            nn.Tanh(),
        )

    def forward(self, image: Tensor, condition: Tensor) -> Tensor:
        features = self.encode(image)  # (B, 2w, 7, 7)
        tiled = condition[:, :, None, None].expand(-1, -1, *features.shape[2:])  # (B, c, 7, 7)
        return self.decode(self.residual(self.join(torch.cat([features, tiled], 1))))


class StackedGenerator(nn.Module):
    """Both stages, each with its own conditioning augmentation: (z (B, latent_dim), text (B, text_dim)) ->
    (stage-I images (B, C, 14, 14), stage-II images (B, C, 28, 28), KL term of both augmentations).

    Stage II refines a detached stage-I image: its loss trains stage II alone, as when the paper trains stage II
    on a fixed stage I, while both stages learn in the same run."""

    def __init__(
        self,
        latent_dim: int = 64,
        text_dim: int = 64,
        condition_dim: int = 16,
        base_channels: int = 32,
        num_blocks: int = 2,
        channels: int = 1,
    ):
        super().__init__()
        self.augment_1 = ConditioningAugmentation(text_dim, condition_dim)
        self.stage_1 = StageIGenerator(latent_dim, condition_dim, base_channels, channels)
        self.augment_2 = ConditioningAugmentation(text_dim, condition_dim)
        self.stage_2 = StageIIGenerator(condition_dim, base_channels, num_blocks, channels)

    def forward(self, z: Tensor, text: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        condition_1, mu_1, log_var_1 = self.augment_1(text)
        low = self.stage_1(z, condition_1)  # (B, C, 14, 14)
        condition_2, mu_2, log_var_2 = self.augment_2(text)
        high = self.stage_2(low.detach(), condition_2)  # (B, C, 28, 28)
        return low, high, kl_divergence(mu_1, log_var_1) + kl_divergence(mu_2, log_var_2)


class MatchingDiscriminator(nn.Module):
    """Matching-aware D (Reed et al. 2016, StackGAN): (images (B, C, S, S), text (B, text_dim)) -> (score (B,),
    attribute logits (B, 18)). The image is downsampled to 3x3 features, the text compressed to ``embed_dim`` and
    tiled over them, and a 3x3 convolution judges the pair: real and matching, or not. The attribute logits
    (class, thickness, slant, size; ``ATTRIBUTE_CLASSES``) come from the image features alone, an auxiliary
    classifier as in ACGAN. No BatchNorm: each example is scored on its own."""

    def __init__(
        self, image_size: int = 28, text_dim: int = 64, base_channels: int = 32, embed_dim: int = 32, channels: int = 1
    ):
        super().__init__()
        layers, cin, cout, size = [], channels, base_channels, image_size
        while size > 4:  # 28 -> 14 -> 7 -> 3, 14 -> 7 -> 3
            layers += [nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
            cin, cout, size = cout, cout * 2, size // 2
        self.image = nn.Sequential(*layers)  # (B, cin, 3, 3)
        self.text = nn.Sequential(nn.Linear(text_dim, embed_dim), nn.LeakyReLU(0.2, True))
        self.joint = nn.Sequential(nn.Conv2d(cin + embed_dim, cin, 3, padding=1), nn.LeakyReLU(0.2, True))
        self.judge = nn.Linear(cin * size * size, 1)  # not `score`: that names what D outputs (ganlab.networks)
        self.attributes = nn.Linear(cin * size * size, sum(ATTRIBUTE_CLASSES))

    def forward(self, images: Tensor, text: Tensor) -> tuple[Tensor, Tensor]:
        features = self.image(images)  # (B, F, 3, 3)
        tiled = self.text(text)[:, :, None, None].expand(-1, -1, *features.shape[2:])  # (B, E, 3, 3)
        joint = self.joint(torch.cat([features, tiled], 1)).flatten(1)
        return self.judge(joint).squeeze(1), self.attributes(features.flatten(1))
