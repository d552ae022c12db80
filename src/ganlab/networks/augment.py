"""DiffAugment (Zhao et al. 2020): differentiable augmentations applied to every image D sees during training,
real and fake alike, so D cannot memorize the few real images and G still gets gradients through them.

For grey images the policies are ``translation`` (shift by up to 1/8 of the size, zero-padded) and ``cutout``
(a zeroed square of half the size at a random place). Each image gets its own draw; the same policy goes on
real images and fakes in D's update and on fakes in G's update. ``model.augment=[translation,cutout]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    """Shift each image by a random integer offset in [-ratio * size, ratio * size], zeros coming in."""
    batch, _, height, width = x.shape
    max_dy, max_dx = int(height * ratio + 0.5), int(width * ratio + 0.5)
    dy = torch.randint(-max_dy, max_dy + 1, (batch, 1, 1), device=x.device)
    dx = torch.randint(-max_dx, max_dx + 1, (batch, 1, 1), device=x.device)
    b, row, col = torch.meshgrid(
        torch.arange(batch, device=x.device),
        torch.arange(height, device=x.device),
        torch.arange(width, device=x.device),
        indexing="ij",
    )  # (B, H, W) each
    row = (row + dy + 1).clamp(0, height + 1)  # +1: index into the 1-pixel zero padding
    col = (col + dx + 1).clamp(0, width + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)  # (B, H + 2, W + 2, C)
    return padded[b, row, col].permute(0, 3, 1, 2)  # (B, C, H, W): a gather, so gradients flow to x


def cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    """Zero a (ratio * H, ratio * W) square centred at a random pixel of each image (clipped at the borders)."""
    batch, _, height, width = x.shape
    size_y, size_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
    cy = torch.randint(0, height + (1 - size_y % 2), (batch, 1, 1), device=x.device)
    cx = torch.randint(0, width + (1 - size_x % 2), (batch, 1, 1), device=x.device)
    b, row, col = torch.meshgrid(
        torch.arange(batch, device=x.device),
        torch.arange(size_y, device=x.device),
        torch.arange(size_x, device=x.device),
        indexing="ij",
    )  # (B, size_y, size_x) each
    row = (row + cy - size_y // 2).clamp(0, height - 1)
    col = (col + cx - size_x // 2).clamp(0, width - 1)
    mask = x.new_ones(batch, height, width)
    mask[b, row, col] = 0
    return x * mask.unsqueeze(1)  # (B, C, H, W)


POLICIES = {"translation": translation, "cutout": cutout}


def check_policy(policy: Sequence[str]) -> tuple[str, ...]:
    unknown = [name for name in policy if name not in POLICIES]
    if unknown:
        raise ValueError(
            f"model.augment: unknown augmentation {unknown}; choose from {sorted(POLICIES)}, e.g. model.augment=[translation,cutout]"
        )
    return tuple(policy)


def diff_augment(x: Tensor, policy: Sequence[str]) -> Tensor:
    for name in policy:
        x = POLICIES[name](x)
    return x


class AugmentedDiscriminator(nn.Module):
    """D behind DiffAugment: in training mode every input batch is augmented first (each call its own draws),
    in eval mode (validation) D sees the images as they are. Other attributes are D's own."""

    def __init__(self, discriminator: nn.Module, policy: Sequence[str]):
        super().__init__()
        self.discriminator = discriminator
        self.policy = check_policy(policy)

    def forward(self, images: Tensor, *args, **kwargs):
        if self.training:
            images = diff_augment(images, self.policy)
        return self.discriminator(images, *args, **kwargs)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("discriminator"), name)


def with_augment(discriminator: nn.Module, policy: Sequence[str] | None) -> nn.Module:
    """``discriminator`` behind DiffAugment's ``policy``, or as it is for none."""
    return AugmentedDiscriminator(discriminator, policy) if policy else discriminator
