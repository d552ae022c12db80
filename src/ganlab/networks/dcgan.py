"""DCGAN (Radford et al. 2016) sized for 28x28: G upsamples a 7x7 map twice, D downsamples with strided convs."""

from __future__ import annotations

from torch import Tensor, nn

from ganlab.networks.layers import check_divisible_by_4, dcgan_init



class Generator(nn.Module):
    """z -> dense -> (2c, H/4, W/4) -> ConvT 2x -> (c, H/2, W/2) -> ConvT 2x -> (C, H, W) -> tanh, c = base_channels."""

    def __init__(self, latent_dim: int = 100, base_channels: int = 64, image_shape: tuple[int, int, int] = (1, 28, 28)):
        super().__init__()
        check_divisible_by_4(image_shape, "dcgan")
        channels, height, width = image_shape
        self.start_shape = (2 * base_channels, height // 4, width // 4)
        self.project = nn.Sequential(
            nn.Linear(latent_dim, 2 * base_channels * (height // 4) * (width // 4), bias=False),
            nn.BatchNorm1d(2 * base_channels * (height // 4) * (width // 4)),
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
        x = self.project(z).view(z.shape[0], *self.start_shape)  # (B, 2c, H/4, W/4)
        return self.upsample(x)  # (B, C, H, W)


def discriminator_trunk(base_channels: int, dropout: float, image_shape: tuple[int, int, int]) -> tuple[nn.Sequential, int]:
    """D's feature extractor, shared with the conditional discriminators: (B, C, H, W) -> two strided convs ->
    (B, F) features, and F."""
    check_divisible_by_4(image_shape, "dcgan")
    channels, height, width = image_shape
    trunk = nn.Sequential(
        nn.Conv2d(channels, base_channels, 4, stride=2, padding=1),
        nn.LeakyReLU(0.2),
        nn.Dropout(dropout),
        nn.Conv2d(base_channels, 2 * base_channels, 4, stride=2, padding=1),
        nn.LeakyReLU(0.2),
        nn.Dropout(dropout),
        nn.Flatten(),
    )
    return trunk, 2 * base_channels * (height // 4) * (width // 4)


class Discriminator(nn.Module):
    """(C, H, W) -> strided conv -> (c, H/2, W/2) -> strided conv -> (2c, H/4, W/4) -> linear -> logit.

    LeakyReLU(0.2) and dropout, no pooling and no BatchNorm: per-example gradient penalties (WGAN-GP) need D
    to treat each example on its own.
    """

    def __init__(self, base_channels: int = 64, dropout: float = 0.3, image_shape: tuple[int, int, int] = (1, 28, 28)):
        super().__init__()
        trunk, feature_dim = discriminator_trunk(base_channels, dropout, image_shape)
        self.net = nn.Sequential(*trunk, nn.Linear(feature_dim, 1))  # one flat Sequential: net.0 ... net.7
        self.apply(dcgan_init)

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images).squeeze(1)  # (B, C, H, W) -> (B,)
