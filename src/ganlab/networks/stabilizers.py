"""Discriminator and generator switches that make GAN training steadier, kept out of the network files.

- ``spectral_normalize(module)``: every conv and linear weight divided by its largest singular value, estimated
  by one power iteration per training forward pass (Miyato et al. 2018), so each layer is 1-Lipschitz
  (``SpectralNorm``: torch's parametrization in fewer ops).
- ``UPSAMPLING``: the generator's 2x upsampling choices (``model.generator.upsample``).
- ``MinibatchStdDev``: the minibatch standard deviation layer (Karras et al. 2018, ProGAN section 3; StyleGAN2's
  ``mbstd``): D sees how much the features vary within a group of its batch, so a G that draws one mode for many
  latents is told apart from the data (``model.discriminator.minibatch_std``).
- ``Pack``: PacGAN's packing (Lin et al. 2018): D judges m images at once, joined along the channels, so a G that
  draws few modes makes packs no real batch makes (``model.discriminator.packing``).
- ``couples_examples(module)``: whether a network's output for one example depends on the others of its batch
  (BatchNorm, or a layer marked ``batch_dependent = True``): refused with per-example gradient penalties, whose
  gradient of D(x_i) must not depend on x_j, and fed real and fake batches apart.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _SpectralNorm

UPSAMPLING = ("transposed", "nearest")
NORMALIZED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


class SpectralNorm(_SpectralNorm):
    """torch's spectral-norm parametrization (same state: ``_u``, ``_v``; same estimate and gradient) in fewer
    ops per training forward, which on a GPU are fewer kernel launches.

    torch runs the power step in place, clones ``u`` and ``v`` for autograd and then computes
    ``sigma = u^T (W v)``, a third matrix-vector product. Here the step writes fresh tensors into the buffers (no
    clones), and ``sigma = (W^T u)^T v`` reuses the step's own ``W^T u``: the same value, and with ``u`` and ``v``
    held constant the same gradient ``u v^T``. Evaluation and more than one power iteration take torch's path.
    """

    def forward(self, weight: Tensor) -> Tensor:
        if weight.ndim == 1 or weight.is_complex() or not self.training or self.n_power_iterations != 1:
            return super().forward(weight)
        weight_mat = self._reshape_weight_to_matrix(weight)
        with torch.no_grad():
            u = torch.mv(weight_mat, self._v)
            u = u / u.norm().clamp_min(self.eps)
            self._u.copy_(u)
        transposed = u @ weight_mat  # W^T u, with W's gradient (one op where mv(W.H, u) is two; W is real)
        with torch.no_grad():
            v = transposed / transposed.norm().clamp_min(self.eps)
            self._v.copy_(v)
        sigma = torch.vdot(transposed, v)  # u^T W v, v held constant as torch holds it
        return weight / sigma


def spectral_normalize(module: nn.Module) -> nn.Module:
    """Spectral normalization (one power iteration per training forward) on every conv and linear layer of
    ``module``, in place; returns it. As ``torch.nn.utils.parametrizations.spectral_norm``, whose state names
    (``parametrizations.weight.original``, ``..._u``, ``..._v``) checkpoints keep."""
    for layer in list(module.modules()):
        if isinstance(layer, NORMALIZED):
            dim = 1 if isinstance(layer, nn.ConvTranspose2d) else 0
            parametrize.register_parametrization(layer, "weight", SpectralNorm(layer.weight, 1, dim, 1e-12))
    return module


class MinibatchStdDev(nn.Module):
    """(B, C, H, W) -> (B, C + 1, H, W): appends, as one more map, the standard deviation of each feature over a
    group of ``group_size`` examples, averaged over features and positions (ProGAN's layer; StyleGAN2-ADA's
    ``MinibatchStdLayer`` with one channel). Groups are strided (example i is in group i mod B/G) as there. A
    batch that ``group_size`` does not divide takes the largest group size that divides it (evaluation batches).
    """

    batch_dependent = True  # D(x_i) depends on the other examples of x_i's group

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, height, width = x.shape
        group = min(self.group_size, batch)
        while batch % group:
            group -= 1
        grouped = x.reshape(group, batch // group, channels, height, width)  # (G, B/G, C, H, W)
        std = (grouped.var(dim=0, unbiased=False) + 1e-8).sqrt()  # (B/G, C, H, W)
        std = std.mean(dim=(1, 2, 3)).reshape(1, -1, 1, 1, 1).expand(group, -1, 1, height, width)  # (G, B/G, 1, H, W)
        return torch.cat([x, std.reshape(batch, 1, height, width)], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}"


class Pack(nn.Module):
    """(B, C, H, W) -> (ceil(B / m), m * C, H, W): each m consecutive images become one input of m * C channels
    (PacGAN's packing, Lin et al. 2018; their Stacked MNIST rows pack 2 to 4), so D scores packs, not images. A
    batch that m does not divide (evaluation batches, a D step's chunk) fills its last pack with its first images.
    """

    batch_dependent = True  # D's score of a pack depends on every image in it

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, height, width = x.shape
        short = -batch % self.size
        if short:
            x = torch.cat([x, x.repeat(-(-short // batch), 1, 1, 1)[:short]])
        return x.reshape(-1, self.size * channels, height, width)

    def extra_repr(self) -> str:
        return f"size={self.size}"


def couples_examples(module: nn.Module) -> bool:
    return any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) or getattr(m, "batch_dependent", False) for m in module.modules()
    )
