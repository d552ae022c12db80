"""Pieces the networks share: DCGAN's weight initialization, the image-size check of 2x-resampling nets, and a
dropout whose mask is cheap to draw on a CPU."""

import torch
from torch import Tensor, nn


def dcgan_init(module: nn.Module) -> None:
    """DCGAN's initialization (Radford et al. 2016): conv and linear weights ~ N(0, 0.02), norm scales ~ N(1, 0.02)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def check_divisible_by_4(image_shape: tuple[int, int, int], network: str) -> None:
    """Networks that resample by 2x twice need H and W divisible by 4; say so before a shape error deep inside."""
    if image_shape[1] % 4 or image_shape[2] % 4:
        raise ValueError(
            f"{network} needs image height and width divisible by 4 (two 2x resamplings), got {tuple(image_shape)}"
        )


class Dropout(nn.Dropout):
    """``nn.Dropout`` (same p, same Bernoulli(1 - p) mask, same 1 / (1 - p) scaling), with the mask drawn faster on
    a CPU.

    On a CPU torch draws dropout's mask with ``bernoulli_``, one element at a time: for DCGAN's D with dropout
    0.3 that was a third of a training step. Comparing bulk uniform draws with p gives a mask of the same
    distribution at half the cost of the forward and backward (docs/performance.md). On other devices
    ``nn.Dropout``'s fused kernel is used.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and 0 < self.p < 1 and x.device.type == "cpu"):
            return super().forward(x)
        keep = (torch.rand_like(x) >= self.p).to(x.dtype).mul_(1 / (1 - self.p))
        return x * keep
