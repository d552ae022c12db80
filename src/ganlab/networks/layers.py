"""Pieces the networks share: DCGAN's weight initialization and the image-size check of 2x-resampling nets."""

from torch import nn


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
