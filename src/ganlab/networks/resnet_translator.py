"""CycleGAN's image-to-image generator (Zhu et al. 2017, after Johnson et al. 2016), sized for 28x28 digits.

c7s1-w, d2w (stride 2: 28 -> 14), ``num_blocks`` residual blocks R2w at 14x14, u w (transposed conv: 14 -> 28),
c7s1-C with tanh: (B, C, 28, 28) in [-1, 1] -> (B, C, 28, 28) in [-1, 1]. Instance normalization and
reflection padding as in the paper (its 128x128 version has two down-samplings and six blocks; 28x28 needs one).
"""

from __future__ import annotations

from torch import Tensor, nn


def conv_norm_relu(cin: int, cout: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    pad = kernel // 2
    return [
        nn.ReflectionPad2d(pad),
        nn.Conv2d(cin, cout, kernel, stride, bias=False),
        nn.InstanceNorm2d(cout, affine=True),
        nn.ReLU(inplace=True),
    ]


class ResidualBlock(nn.Module):
    """x + (conv3-IN-ReLU-conv3-IN)(x), reflection padded: keeps the shape."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            *conv_norm_relu(channels, channels, 3),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=False),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetTranslator(nn.Module):
    """(B, C, H, W) -> (B, C, H, W), H and W even: one image domain to another."""

    def __init__(self, channels: int = 1, base_channels: int = 16, num_blocks: int = 3):
        super().__init__()
        w = base_channels
        self.net = nn.Sequential(
            *conv_norm_relu(channels, w, 7),  # (B, w, H, W)
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1, bias=False),
            nn.InstanceNorm2d(2 * w, affine=True),
            nn.ReLU(inplace=True),  # (B, 2w, H/2, W/2)
            *[ResidualBlock(2 * w) for _ in range(num_blocks)],
            nn.ConvTranspose2d(2 * w, w, 3, stride=2, padding=1, output_padding=1, bias=False),
            nn.InstanceNorm2d(w, affine=True),
            nn.ReLU(inplace=True),  # (B, w, H, W)
            nn.ReflectionPad2d(3),
            nn.Conv2d(w, channels, 7),
            nn.Tanh(),
        )

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images)
