"""The PatchGAN discriminator of pix2pix and CycleGAN (Isola et al. 2017, Zhu et al. 2017), sized for 28x28.

C w (stride 2, no norm) -> C 2w (stride 2) -> C 4w (stride 1) -> a 1-channel conv: one raw logit per
overlapping patch. At 28x28 the output is (B, 1, 6, 6) and each logit sees a 22x22 patch (the paper's 70x70
on 256x256 covers a similar share of the image). ``forward`` returns the patch logits flattened, (B * P,):
the losses average over them, so every patch is judged as real or fake, as in the paper.
"""

from __future__ import annotations

from torch import Tensor, nn


class PatchDiscriminator(nn.Module):
    def __init__(self, channels: int = 1, base_channels: int = 32):
        super().__init__()
        w = base_channels
        self.net = nn.Sequential(
            nn.Conv2d(channels, w, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),  # (B, w, 14, 14)
            nn.Conv2d(w, 2 * w, 4, 2, 1, bias=False),
            nn.InstanceNorm2d(2 * w, affine=True),
            nn.LeakyReLU(0.2, inplace=True),  # (B, 2w, 7, 7)
            nn.Conv2d(2 * w, 4 * w, 3, 1, 1, bias=False),
            nn.InstanceNorm2d(4 * w, affine=True),
            nn.LeakyReLU(0.2, inplace=True),  # (B, 4w, 7, 7)
            nn.Conv2d(4 * w, 1, 2, 1, 0),  # (B, 1, 6, 6)
        )

    def patch_logits(self, images: Tensor) -> Tensor:
        return self.net(images)  # (B, 1, h, w)

    def forward(self, images: Tensor) -> Tensor:
        return self.patch_logits(images).flatten()  # (B * P,)
