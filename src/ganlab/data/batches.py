"""The typed batches the datamodules yield (after ``on_after_batch_transfer``) and the families' objectives take.

Named tuples: they unpack like the plain tuples they replace, Lightning moves them to the device field by field,
and a field says what it holds where a tuple's second element could mean labels, domain B or captions.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor


class LabelledBatch(NamedTuple):
    """Images with their class labels (data=mnist, fashion_mnist, uci_digits)."""

    images: Tensor  # (B, C, H, W) in [-1, 1]
    labels: Tensor  # (B,) class indices; -1 where data.labels_per_class hides the label


class UnpairedBatch(NamedTuple):
    """Images of two domains, unpaired (data=digits_to_mnist)."""

    a: Tensor  # (B, C, H, W) images of domain A, in [-1, 1]
    b: Tensor  # (B, C, H, W) images of domain B, unpaired with a's


class CaptionedBatch(NamedTuple):
    """Images with a caption each (data=captioned_mnist, captioned_fashion_mnist)."""

    images: Tensor  # (B, C, H, W) in [-1, 1]
    captions: Tensor  # (B, W) packed captions (ganlab.data.captions.unpack)


Batch = LabelledBatch | UnpairedBatch | CaptionedBatch


def split_batch(batch: Batch, chunks: int) -> list[Batch]:
    """``chunks`` batches of the same type, each field cut alike along its first dimension: one per
    discriminator step when a training batch holds that many steps' images."""
    if chunks == 1:
        return [batch]
    return [type(batch)(*fields) for fields in zip(*(field.chunk(chunks) for field in batch))]
