"""Discriminator and generator switches that make GAN training steadier, kept out of the network files.

- ``spectral_normalize(module)``: every conv and linear weight divided by its largest singular value, estimated
  by one power iteration per training forward pass (Miyato et al. 2018), so each layer is 1-Lipschitz.
- ``UPSAMPLING``: the generator's 2x upsampling choices (``model.generator.upsample``).
- ``has_batchnorm(module)``: whether a network couples the examples of a batch (refused with per-example
  gradient penalties, whose gradient of D(x_i) must not depend on x_j).
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

UPSAMPLING = ("transposed", "nearest")
NORMALIZED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def spectral_normalize(module: nn.Module) -> nn.Module:
    """Spectral normalization on every conv and linear layer of ``module``, in place; returns it."""
    for layer in list(module.modules()):
        if isinstance(layer, NORMALIZED):
            spectral_norm(layer)
    return module


def has_batchnorm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())
