"""Two unpaired digit domains for image-to-image translation (``data=digits_to_mnist``, ``experiment=cyclegan``):
A = the UCI handwritten digits (``data/uci_digits.py``), B = MNIST (``data/mnist.py``: full MNIST, or offline the
bundled sample).

Each domain keeps its own seeded train/val/test split. A training batch is ``(A images, B images)``, n of each,
drawn independently (``UnpairedBatches``): the labels never reach training. Validation and test batches are
``(A images, A labels, B images, B labels)`` and visit every image of each domain once (``TwoDomainBatches``),
for the label-preservation scores (``ganlab.metrics.translation``).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset

from ganlab.data.batches import UnpairedBatch
from ganlab.data.idx_datamodule import IDXDataModule
from ganlab.data.samplers import ResumableLoader, TwoDomainBatches, UnpairedBatches


class UnpairedImages(Dataset):
    """Indexed by a (2, n) tensor of (A rows, B rows): the two domains' uint8 images, (n, H, W) each."""

    def __init__(self, a: TensorDataset, b: TensorDataset):
        self.a_images, self.b_images = a.tensors[0], b.tensors[0]

    def __getitem__(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        return self.a_images[rows[0]], self.b_images[rows[1]]

    def __len__(self) -> int:
        return max(len(self.a_images), len(self.b_images))


class LabelledPairs(Dataset):
    """Indexed by (A rows, B rows): (A images, A labels, B images, B labels), for evaluation only."""

    def __init__(self, a: TensorDataset, b: TensorDataset):
        self.a, self.b = a, b

    def __getitem__(self, rows: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return (*self.a[rows[0]], *self.b[rows[1]])

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))


class DigitsToMNISTDataModule(L.LightningDataModule):
    """Domain A and domain B, two ``IDXDataModule``s (their configs in ``domain_a`` and ``domain_b``)."""

    batch_type = UnpairedBatch  # training batches

    def __init__(
        self,
        domain_a: IDXDataModule,
        domain_b: IDXDataModule,
        batch_size: int = 8,
        seed: int = 0,
        discriminator_steps: int = 1,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        num_classes: int = 10,
        download: bool = True,
    ):
        super().__init__()
        self.domain_a, self.domain_b = domain_a, domain_b
        if not download:  # data.download=false: no domain is downloaded (offline machines, tests)
            domain_a.download = domain_b.download = False
        self.batch_size, self.seed, self.discriminator_steps = batch_size, seed, discriminator_steps
        self.image_shape, self.num_classes = tuple(image_shape), num_classes
        for domain in (domain_a, domain_b):
            if tuple(domain.image_shape) != self.image_shape:
                raise ValueError(
                    f"{domain.name} images are {tuple(domain.image_shape)}, data.image_shape is {self.image_shape}: both domains need the same shape"
                )

    @property
    def name(self) -> str:
        return f"{self.domain_a.name} -> {self.domain_b.name}"

    def prepare_data(self) -> None:
        self.domain_a.prepare_data()
        self.domain_b.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        self.domain_a.setup(stage)
        self.domain_b.setup(stage)

    def _rank(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_dataloader(self) -> ResumableLoader:
        a, b = self.domain_a.train_set, self.domain_b.train_set
        rank, world_size = self._rank()
        sampler = UnpairedBatches(
            len(a), len(b), self.batch_size * self.discriminator_steps, self.seed, rank, world_size
        )
        return ResumableLoader(UnpairedImages(a, b), batch_size=None, sampler=sampler)

    def _evaluation_loader(self, split: str, batch_size: int | None = None) -> ResumableLoader:
        a, b = getattr(self.domain_a, f"{split}_set"), getattr(self.domain_b, f"{split}_set")
        rank, world_size = self._rank()
        sampler = TwoDomainBatches(len(a), len(b), batch_size or max(self.batch_size, 64), rank, world_size)
        return ResumableLoader(LabelledPairs(a, b), batch_size=None, sampler=sampler)

    def val_dataloader(self) -> ResumableLoader:
        return self._evaluation_loader("val")

    def test_dataloader(self) -> ResumableLoader:
        return self._evaluation_loader("test")

    def record(self) -> dict[str, Any]:
        """What rebuilds this data from a checkpoint alone (see ``IDXDataModule.record``)."""
        return {
            "_target_": f"{type(self).__module__}.{type(self).__qualname__}",
            "domain_a": self.domain_a.record(),
            "domain_b": self.domain_b.record(),
            "batch_size": self.batch_size,
            "seed": self.seed,
            "image_shape": list(self.image_shape),
            "num_classes": self.num_classes,
        }

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """uint8 (n, H, W) images -> (n, 1, H, W) in [-1, 1]; a training batch (A images, B images) becomes an
        ``UnpairedBatch``; evaluation batches (A images, A labels, B images, B labels) keep their labels."""
        parts = tuple(
            part.unsqueeze(1).float().div_(127.5).sub_(1.0) if part.dtype == torch.uint8 else part for part in batch
        )
        return UnpairedBatch(*parts) if len(parts) == 2 else parts
