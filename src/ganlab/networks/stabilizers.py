"""Discriminator and generator switches that make GAN training steadier, kept out of the network files.

- ``spectral_normalize(module)``: every conv and linear weight divided by its largest singular value, estimated
  by one power iteration per training forward pass (Miyato et al. 2018), so each layer is 1-Lipschitz.
- ``UPSAMPLING``: the generator's 2x upsampling choices (``model.generator.upsample``).
- ``couples_examples(module)``: whether a network's output for one example depends on the others of its batch
  (BatchNorm, or a layer marked ``batch_dependent = True``): refused with per-example gradient penalties, whose
  gradient of D(x_i) must not depend on x_j, and fed real and fake batches apart.
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


def couples_examples(module: nn.Module) -> bool:
    return any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) or getattr(m, "batch_dependent", False) for m in module.modules()
    )
