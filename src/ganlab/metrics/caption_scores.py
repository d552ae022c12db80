"""Scores of a text-to-image generator against its captions (``model=stackgan``).

- Attribute agreement: generated images re-measured with the training split's per-class thresholds
  (``data/captions.py``); the share whose thickness, slant and size bins are the ones the caption asked for.
  Chance: 1/3 for thickness and slant (terciles), 1/2 for size (the median).
- Retrieval: N images, each drawn from its own caption, against the same N captions; each image ranks the N
  captions by the stage-II matching-aware discriminator's score, and recall@k / mean rank of its own caption
  are compared with chance (k / N and (N + 1) / 2).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ganlab.data.captions import VALUES, AttributeBins

CHANCE = {name: 1 / len(values) for name, values in VALUES.items()}  # thickness 1/3, slant 1/3, size 1/2


def to_intensity(images: Tensor) -> Tensor:
    """(B, 1, H, W) in [-1, 1] -> (B, H, W) in [0, 1], as ``measure`` reads them."""
    return ((images[:, 0].float().cpu() + 1) / 2).clamp(0, 1)


def attribute_agreement(images: Tensor, asked: Tensor, bins: AttributeBins) -> Tensor:
    """(B, 3) bool: whether each image's measured thickness, slant and size are those of ``asked`` (B, 4)."""
    asked = asked.cpu()
    measured = bins.label(to_intensity(images), asked[:, 0])  # (B, 4), read as the class asked for
    return measured[:, 1:] == asked[:, 1:]


@torch.no_grad()
def retrieval_ranks(score: Callable[[Tensor, Tensor], Tensor], images: Tensor, text: Tensor) -> Tensor:
    """(N,) rank (1 = best) of each image's own caption among the N captions, by ``score(images, text)`` (M,)
    over M image-caption pairs. Ties count against the own caption."""
    n = len(images)
    pairs = score(images.repeat_interleave(n, dim=0), text.repeat(n, 1)).view(n, n)  # [image i, caption j]
    own = pairs.diagonal()[:, None]  # (N, 1)
    return (pairs >= own).sum(1)  # captions scoring at least as high, the own one included


def retrieval_summary(ranks: Tensor, candidates: int) -> dict[str, float]:
    ranks = ranks.float()
    return {
        "recall_at_1": (ranks <= 1).float().mean().item(),
        "recall_at_5": (ranks <= 5).float().mean().item(),
        "mean_rank": ranks.mean().item(),
        "candidates": candidates,
        "chance_recall_at_1": 1 / candidates,
        "chance_recall_at_5": min(5, candidates) / candidates,
        "chance_mean_rank": (candidates + 1) / 2,
    }
