"""DCGAN (Radford et al. 2016) sized for 28x28: G upsamples a 7x7 map twice, D downsamples with strided convs."""

from __future__ import annotations

from torch import Tensor, nn

from ganlab.networks.layers import Dropout, check_divisible_by_4, dcgan_init
from ganlab.networks.stabilizers import UPSAMPLING, MinibatchStdDev, Pack, spectral_normalize


def _up(in_channels: int, out_channels: int, upsample: str, bias: bool) -> list[nn.Module]:
    """2x upsampling: a 4x4 stride-2 transposed conv, or nearest-neighbour 2x then a 3x3 conv (no checkerboard:
    every output pixel sees the same number of kernel taps; Odena et al. 2016)."""
    if upsample == "transposed":
        return [nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=bias)]
    return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias)]


class Generator(nn.Module):
    """z -> dense -> (2c, H/4, W/4) -> up 2x -> (c, H/2, W/2) -> up 2x -> (C, H, W) -> tanh, c = base_channels.

    ``upsample``: "transposed" (4x4 stride-2 transposed convs) or "nearest" (nearest 2x + 3x3 conv).
    ``head_channels``: 0 maps the second upsampling straight to the image; h > 0 maps it to h feature maps at full
    resolution (BatchNorm, ReLU) and a 3x3 conv makes the image from them, as the G of PyTorch-GAN's and
    StudioGAN's DCGANs do: the last layer then draws each pixel from h maps instead of from c maps at half size."""

    def __init__(
        self,
        latent_dim: int = 100,
        base_channels: int = 64,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        upsample: str = "transposed",
        head_channels: int = 0,
    ):
        super().__init__()
        check_divisible_by_4(image_shape, "dcgan")
        if head_channels < 0:
            raise ValueError(f"model.generator.head_channels must be 0 (no head) or positive, got {head_channels}")
        if upsample not in UPSAMPLING:
            raise ValueError(f"model.generator.upsample must be one of {UPSAMPLING}, got {upsample!r}")
        channels, height, width = image_shape
        self.start_shape = (2 * base_channels, height // 4, width // 4)
        self.project = nn.Sequential(
            nn.Linear(latent_dim, 2 * base_channels * (height // 4) * (width // 4), bias=False),
            nn.BatchNorm1d(2 * base_channels * (height // 4) * (width // 4)),
            nn.ReLU(),
        )
        self.upsample = nn.Sequential(
            *_up(2 * base_channels, base_channels, upsample, bias=False),
            nn.BatchNorm2d(base_channels),
            nn.ReLU(),
            *(
                _up(base_channels, channels, upsample, bias=True)
                if not head_channels
                else [
                    *_up(base_channels, head_channels, upsample, bias=False),
                    nn.BatchNorm2d(head_channels),
                    nn.ReLU(),
                    nn.Conv2d(head_channels, channels, 3, padding=1),
                ]
            ),
            nn.Tanh(),
        )
        self.apply(dcgan_init)

    def forward(self, z: Tensor) -> Tensor:
        x = self.project(z).view(z.shape[0], *self.start_shape)  # (B, 2c, H/4, W/4)
        return self.upsample(x)  # (B, C, H, W)


def discriminator_trunk(
    base_channels: int,
    dropout: float,
    image_shape: tuple[int, int, int],
    batchnorm: bool = False,
    deep: bool = False,
    minibatch_std: int = 0,
) -> tuple[nn.Sequential, int]:
    """D's feature extractor, shared with the conditional discriminators: (B, C, H, W) -> two strided convs ->
    (B, F) features, and F. ``batchnorm``: BatchNorm after the second conv (DCGAN's D: none on the input layer;
    with ``deep``, after the second strided conv). ``deep``: SNGAN's "standard CNN" D (Miyato et al. 2018,
    table 3) sized for 28x28: a 3x3 conv before each strided one and one after the last (c, c, 2c, 2c, 4c
    channels): five convs instead of two. ``minibatch_std``: a minibatch standard deviation map over groups of
    that size before the features are flattened (0: none)."""
    if minibatch_std < 0 or minibatch_std == 1:
        raise ValueError(
            f"model.discriminator.minibatch_std={minibatch_std}: it is a group size, so at least 2 "
            f"(StyleGAN's 4), or 0 for no minibatch standard deviation"
        )
    trunk, feature_dim = _trunk(base_channels, dropout, image_shape, batchnorm, deep)
    if not minibatch_std:
        return trunk, feature_dim
    _, height, width = image_shape  # one more (H/4, W/4) map, before the Flatten that ends the trunk
    trunk = nn.Sequential(*trunk[:-1], MinibatchStdDev(minibatch_std), trunk[-1])
    return trunk, feature_dim + (height // 4) * (width // 4)


def _trunk(
    base_channels: int, dropout: float, image_shape: tuple[int, int, int], batchnorm: bool, deep: bool
) -> tuple[nn.Sequential, int]:
    check_divisible_by_4(image_shape, "dcgan")
    channels, height, width = image_shape
    if deep:
        c = base_channels
        trunk = nn.Sequential(
            *_conv_act(channels, c, 3, 1, dropout),
            *_conv_act(c, c, 4, 2, dropout),
            *_conv_act(c, 2 * c, 3, 1, dropout),
            *_conv_act(2 * c, 2 * c, 4, 2, dropout, batchnorm),
            *_conv_act(2 * c, 4 * c, 3, 1, dropout),
            nn.Flatten(),
        )
        return trunk, 4 * c * (height // 4) * (width // 4)
    trunk = nn.Sequential(
        nn.Conv2d(channels, base_channels, 4, stride=2, padding=1),
        nn.LeakyReLU(0.2),
        Dropout(dropout),
        nn.Conv2d(base_channels, 2 * base_channels, 4, stride=2, padding=1, bias=not batchnorm),
        *([nn.BatchNorm2d(2 * base_channels)] if batchnorm else []),
        nn.LeakyReLU(0.2),
        Dropout(dropout),
        nn.Flatten(),
    )
    return trunk, 2 * base_channels * (height // 4) * (width // 4)


def _conv_act(
    in_channels: int, out_channels: int, kernel: int, stride: int, dropout: float, batchnorm: bool = False
) -> list[nn.Module]:
    """A conv (3x3 stride 1, or 4x4 stride 2: half size), optional BatchNorm, LeakyReLU(0.2), dropout."""
    return [
        nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=1, bias=not batchnorm),
        *([nn.BatchNorm2d(out_channels)] if batchnorm else []),
        nn.LeakyReLU(0.2),
        *([Dropout(dropout)] if dropout else []),
    ]


class Discriminator(nn.Module):
    """(C, H, W) -> strided conv -> (c, H/2, W/2) -> strided conv -> (2c, H/4, W/4) -> linear -> logit.

    LeakyReLU(0.2) and dropout, no pooling and by default no BatchNorm: per-example gradient penalties (WGAN-GP,
    R1) need D to treat each example on its own (``batchnorm=true`` is refused with them). ``spectral_norm``
    divides every conv and linear weight by its largest singular value (Miyato et al. 2018). ``packing=m``: D scores
    m images at once, joined along the channels (PacGAN; ``Pack``), one score per pack.
    """

    def __init__(
        self,
        base_channels: int = 64,
        dropout: float = 0.3,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        spectral_norm: bool = False,
        batchnorm: bool = False,
        deep: bool = False,
        minibatch_std: int = 0,  # group size of a minibatch standard deviation map before the last layer; 0: none
        packing: int = 1,  # images D judges at once, joined along the channels (PacGAN); 1: each image alone
    ):
        super().__init__()
        if packing < 1:
            raise ValueError(f"model.discriminator.packing={packing}: it is a number of images, so at least 1")
        channels, height, width = image_shape
        trunk, feature_dim = discriminator_trunk(
            base_channels, dropout, (packing * channels, height, width), batchnorm, deep, minibatch_std
        )
        pack = [Pack(packing)] if packing > 1 else []
        # one flat Sequential: net.0 ... net.7 (net.8 with BatchNorm, one more each with minibatch_std and packing)
        self.net = nn.Sequential(*pack, *trunk, nn.Linear(feature_dim, 1))
        self.apply(dcgan_init)
        if spectral_norm:
            spectral_normalize(self)

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images).squeeze(1)  # (B, C, H, W) -> (B,), or (ceil(B / packing),) packs
