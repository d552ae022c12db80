"""BEGAN's networks (Berthelot et al. 2017), sized for 28x28: 3x3 convolutions with ELUs, stride-2 convolutions
to go down, nearest-neighbour upsampling to go up, and an embedding of size h between encoder and decoder.

The discriminator is an autoencoder; its score is the per-example reconstruction error L(v) = mean |v - D(v)|
(BEGAN's eta = 1), which is what loss=began plays on. ``batchnorm`` puts BatchNorm at its bottleneck (on the
embedding h and on the decoder's projection of it), as PyTorch-GAN's BEGAN does: a batch of fakes is then
reconstructed through its own statistics, and at CPU sizes that is what keeps G from collapsing to one digit
(docs/variants.md). ``Generator`` is the paper's G, the decoder's architecture with its own weights;
conf/model/began.yaml uses DCGAN's BatchNorm generator instead, which learned where this one collapsed.
"""

from __future__ import annotations

from torch import Tensor, nn

from ganlab.networks.layers import check_divisible_by_4


def _conv_block(in_channels: int, out_channels: int, convs: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for index in range(convs):
        layers += [nn.Conv2d(in_channels if index == 0 else out_channels, out_channels, 3, padding=1), nn.ELU()]
    return layers


def _bottleneck_norm(features: int, batchnorm: bool) -> list[nn.Module]:
    return [nn.BatchNorm1d(features), nn.ELU()] if batchnorm else []


class Decoder(nn.Module):
    """h -> linear -> (n, H/4, W/4) -> [convs, 2x nearest upsampling] x 2 -> convs -> 3x3 conv -> (C, H, W), n = base_channels."""

    def __init__(
        self,
        hidden_dim: int = 64,
        base_channels: int = 32,
        convs_per_scale: int = 2,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        batchnorm: bool = False,
    ):
        super().__init__()
        check_divisible_by_4(image_shape, "began")
        channels, height, width = image_shape
        self.start_shape = (base_channels, height // 4, width // 4)
        size = base_channels * (height // 4) * (width // 4)
        self.project = nn.Linear(hidden_dim, size)
        self.project_norm = nn.Sequential(*_bottleneck_norm(size, batchnorm))  # apart: older checkpoints' keys hold
        layers: list[nn.Module] = []
        for _ in range(2):
            layers += [
                *_conv_block(base_channels, base_channels, convs_per_scale),
                nn.Upsample(scale_factor=2, mode="nearest"),
            ]
        layers += [
            *_conv_block(base_channels, base_channels, convs_per_scale),
            nn.Conv2d(base_channels, channels, 3, padding=1),
        ]
        self.net = nn.Sequential(*layers)

    def forward(self, h: Tensor) -> Tensor:  # (B, h) -> (B, C, H, W)
        return self.net(self.project_norm(self.project(h)).view(h.shape[0], *self.start_shape))


class Encoder(nn.Module):
    """(C, H, W) -> 3x3 conv -> [convs, stride-2 conv] x 2 -> convs -> linear -> h; channels n, 2n, 3n per scale."""

    def __init__(
        self,
        hidden_dim: int = 64,
        base_channels: int = 32,
        convs_per_scale: int = 2,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        batchnorm: bool = False,
    ):
        super().__init__()
        check_divisible_by_4(image_shape, "began")
        channels, height, width = image_shape
        n = base_channels
        layers: list[nn.Module] = [nn.Conv2d(channels, n, 3, padding=1), nn.ELU()]
        for scale in (1, 2):  # n -> 2n at H/2, 2n -> 3n at H/4: the paper grows channels linearly with depth
            layers += [
                *_conv_block(scale * n, scale * n, convs_per_scale),
                nn.Conv2d(scale * n, (scale + 1) * n, 3, stride=2, padding=1),
                nn.ELU(),
            ]
        layers += [
            *_conv_block(3 * n, 3 * n, convs_per_scale),
            nn.Flatten(),
            nn.Linear(3 * n * (height // 4) * (width // 4), hidden_dim),
            *_bottleneck_norm(hidden_dim, batchnorm),
        ]
        self.net = nn.Sequential(*layers)

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images)  # (B, C, H, W) -> (B, h)


class Generator(nn.Module):
    """z -> the decoder's architecture -> tanh: images in [-1, 1] like every generator here."""

    def __init__(
        self,
        latent_dim: int = 64,
        base_channels: int = 32,
        convs_per_scale: int = 2,
        image_shape: tuple[int, int, int] = (1, 28, 28),
    ):
        super().__init__()
        self.decoder = Decoder(latent_dim, base_channels, convs_per_scale, image_shape)

    def forward(self, z: Tensor) -> Tensor:
        return self.decoder(z).tanh()  # (B, latent) -> (B, C, H, W)


class Discriminator(nn.Module):
    """An autoencoder that scores an image by how badly it reconstructs it: (B, C, H, W) -> L(v) (B,)."""

    score = "reconstruction_error"  # not a logit: loss=began plays on it (ganlab.models.gan.GAN checks the pairing)

    def __init__(
        self,
        hidden_dim: int = 64,
        base_channels: int = 32,
        convs_per_scale: int = 2,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        batchnorm: bool = False,
    ):
        super().__init__()
        self.encoder = Encoder(hidden_dim, base_channels, convs_per_scale, image_shape, batchnorm)
        self.decoder = Decoder(hidden_dim, base_channels, convs_per_scale, image_shape, batchnorm)

    def reconstruct(self, images: Tensor) -> Tensor:
        return self.decoder(self.encoder(images))  # (B, C, H, W)

    def forward(self, images: Tensor) -> Tensor:
        return (images - self.reconstruct(images)).abs().flatten(1).mean(dim=1)  # (B,): mean |v - D(v)|
