"""DiffAugment (Zhao et al. 2020): differentiable augmentations applied to every image D sees during training,
real and fake alike, so D cannot memorize the few real images and G still gets gradients through them.

For grey images the policies are ``translation`` (shift by up to 1/8 of the size, zero-padded) and ``cutout``
(a zeroed square of half the size at a random place). Each image gets its own draw; the same policy goes on
real images and fakes in D's update and on fakes in G's update. ``model.augment=[translation,cutout]``.

Each augmentation reaches each image with probability p: 1 by default (DiffAugment), fixed with
``model.augment_p``, or adapted during training as in StyleGAN2-ADA (Karras et al. 2020) with
``model.augment_target``: p starts at 0 and after every discriminator update moves up when D's overfitting
signal r_t = E[sign(D(x) - boundary)] over that update's (augmented) real images is above the target (0.6 in
ADA), down when below, by (images seen) / ``model.augment_speed``. So p settles where r_t is above the target
in half of the updates (ADA reads r_t over 4 updates of 64 images; here each update's own images, all ranks').
Short runs, where D does not yet overfit, keep p near 0; long runs on few images raise it as D starts to
memorize them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def translation(x: Tensor, ratio: float = 0.125, apply: Tensor | None = None) -> Tensor:
    """Shift each image by a random integer offset in [-ratio * size, ratio * size], zeros coming in; only the
    images where ``apply`` (B,) is true, when given."""
    batch, _, height, width = x.shape
    max_dy, max_dx = int(height * ratio + 0.5), int(width * ratio + 0.5)
    dy = torch.randint(-max_dy, max_dy + 1, (batch, 1, 1), device=x.device)
    dx = torch.randint(-max_dx, max_dx + 1, (batch, 1, 1), device=x.device)
    if apply is not None:
        dy, dx = dy * apply.view(-1, 1, 1), dx * apply.view(-1, 1, 1)  # offset 0: the image as it is
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


def cutout(x: Tensor, ratio: float = 0.5, apply: Tensor | None = None) -> Tensor:
    """Zero a (ratio * H, ratio * W) square centred at a random pixel of each image (clipped at the borders); only
    in the images where ``apply`` (B,) is true, when given."""
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
    if apply is not None:
        mask = torch.where(apply.view(-1, 1, 1), mask, 1.0)
    return x * mask.unsqueeze(1)  # (B, C, H, W)


POLICIES = {"translation": translation, "cutout": cutout}


def check_policy(policy: Sequence[str]) -> tuple[str, ...]:
    unknown = [name for name in policy if name not in POLICIES]
    if unknown:
        raise ValueError(
            f"model.augment: unknown augmentation {unknown}; choose from {sorted(POLICIES)}, e.g. model.augment=[translation,cutout]"
        )
    return tuple(policy)


def diff_augment(x: Tensor, policy: Sequence[str], p: Tensor | None = None) -> Tensor:
    """``x`` through each augmentation of ``policy``; with ``p`` (a 0-dim tensor), each augmentation reaches each
    image with probability p, drawn apart for each augmentation, as ADA draws them."""
    for name in policy:
        apply = None if p is None else torch.rand(len(x), device=x.device) < p
        x = POLICIES[name](x, apply=apply)
    return x


class AugmentedDiscriminator(nn.Module):
    """D behind DiffAugment: in training mode every input batch is augmented first (each call its own draws),
    in eval mode (validation) D sees the images as they are. Other attributes are D's own.

    ``probability`` None augments every image (DiffAugment); a number, each image with that probability; with
    ``target``, the probability adapts (``adapt``), starting at ``probability`` or 0. The probability is a
    buffer: checkpoints keep it and a resumed run goes on from it."""

    def __init__(
        self,
        discriminator: nn.Module,
        policy: Sequence[str],
        probability: float | None = None,
        target: float | None = None,
        speed: float = 100_000,
    ):
        super().__init__()
        self.discriminator = discriminator
        self.policy = check_policy(policy)
        self.target, self.speed = target, speed
        start = probability if probability is not None else (0.0 if target is not None else None)
        self.register_buffer("p", None if start is None else torch.tensor(float(start)))

    @property
    def adaptive(self) -> bool:
        return self.target is not None

    def forward(self, images: Tensor, *args, **kwargs):
        if self.training:
            images = diff_augment(images, self.policy, self.p)
        return self.discriminator(images, *args, **kwargs)

    @torch.no_grad()
    def adapt(self, overfitting: Tensor, images: int) -> None:
        """ADA's step after a D update: p up by ``images`` / speed when the overfitting signal r_t (a 0-dim tensor,
        the same on every rank) is above the target, down when below; kept in [0, 1]. On the device: no sync."""
        self.p.add_(torch.sign(overfitting - self.target) * (images / self.speed)).clamp_(0.0, 1.0)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("discriminator"), name)


def with_augment(discriminator: nn.Module, policy: Sequence[str] | None, **options: Any) -> nn.Module:
    """``discriminator`` behind DiffAugment's ``policy`` (``options``: AugmentedDiscriminator's probability,
    target, speed), or as it is for none."""
    return AugmentedDiscriminator(discriminator, policy, **options) if policy else discriminator
