"""Real images with captions (``data=captioned_mnist``, ``data=captioned_fashion_mnist``), for ``model=stackgan``.

An ``IDXDataModule`` (MNIST or Fashion-MNIST, its files and split unchanged) gives the images; every image gets
its attributes measured once (``data/captions.py``: thresholds from the training split), and a caption drawn
per image and per epoch from the seed, the epoch and the image's index alone (``CaptionedBatches``): an epoch
shows each image with a new phrasing, and a run resumed mid-epoch draws the captions an uninterrupted one would.

A batch is ``(images (B, H, W) uint8, captions (B, MAX_TOKENS + 9) long)``: the captions packed as in
``data/captions.py``, so the GAN chunks them like labels. Validation and test captions are fixed per image.
"""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset

from ganlab.data.batches import CaptionedBatch
from ganlab.data.captions import AttributeBins, CaptionGrammar
from ganlab.data.idx_datamodule import IDXDataModule
from ganlab.data.samplers import EpochBatches, ResumableLoader, index_batch_loader


def caption_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of one image's caption in one epoch."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


class CaptionedBatches(EpochBatches):
    """``EpochBatches`` whose batches are (2, n): the image rows, and the seed of each image's caption this epoch."""

    def __iter__(self):
        for rows in super().__iter__():
            yield torch.stack([rows, torch.tensor([caption_seed(self.seed, self.epoch, int(r)) for r in rows])])


class CaptionedImages(Dataset):
    """Indexed by (2, n) (rows, caption seeds): (uint8 images (n, H, W), packed captions (n, MAX_TOKENS + 9))."""

    def __init__(self, images: TensorDataset, attributes: Tensor, grammar: CaptionGrammar, drop: float):
        self.images, self.attributes, self.grammar, self.drop = images.tensors[0], attributes, grammar, drop

    def __getitem__(self, rows_and_seeds: Tensor) -> tuple[Tensor, Tensor]:
        rows, seeds = rows_and_seeds[0], rows_and_seeds[1]
        captions, mentioned = [], []
        for row, seed in zip(rows.tolist(), seeds.tolist()):
            words, said = self.grammar.describe(self.attributes[row].tolist(), random.Random(seed), self.drop)
            captions.append(words)
            mentioned.append(said)
        return self.images[rows], self.grammar.pack(captions, self.attributes[rows], torch.tensor(mentioned))

    def __len__(self) -> int:
        return len(self.images)


class CaptionedDataModule(L.LightningDataModule):
    """The images of ``images`` (an ``IDXDataModule``), each with a caption of its measured attributes."""

    batch_type = CaptionedBatch

    def __init__(
        self,
        images: IDXDataModule,
        caption_classes: str = "mnist",
        held_out: list[str] | tuple[str, ...] = (),
        drop: float = 0.15,
        batch_size: int = 64,
        seed: int = 0,
        discriminator_steps: int = 1,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        num_classes: int = 10,
        download: bool = True,
    ):
        super().__init__()
        self.images = images
        if not download:
            images.download = False
        self.grammar = CaptionGrammar(caption_classes, list(held_out))
        self.caption_classes, self.held_out, self.drop = caption_classes, list(held_out), drop
        self.batch_size, self.seed, self.discriminator_steps = batch_size, seed, discriminator_steps
        self.image_shape, self.num_classes = tuple(image_shape), num_classes
        self.bins: AttributeBins | None = None

    # What the domain classifier (FID features) sees: the images' own dataset and files.
    @property
    def name(self) -> str:
        return self.images.name

    @property
    def source(self):
        return self.images.source

    def prepare_data(self) -> None:
        self.images.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        if self.bins is not None:
            return
        self.images.setup(stage)
        train_images, train_labels = self.images.train_set.tensors
        self.bins = AttributeBins.fit(train_images, train_labels, self.num_classes)
        for split in ("train", "val", "test"):
            images, labels = getattr(self.images, f"{split}_set").tensors
            attributes = self.bins.label(images, labels)  # (N, 4)
            drop = self.drop if split == "train" else 0.0
            setattr(self, f"{split}_set", CaptionedImages(TensorDataset(images), attributes, self.grammar, drop))

    def _loader(self, dataset: CaptionedImages, batch_size: int, train: bool) -> ResumableLoader:
        return index_batch_loader(dataset, batch_size, train, self.seed, self.trainer, CaptionedBatches)

    def train_dataloader(self) -> ResumableLoader:
        return self._loader(self.train_set, self.batch_size * self.discriminator_steps, train=True)

    def val_dataloader(self) -> ResumableLoader:
        return self._loader(self.val_set, self.batch_size, train=False)

    def test_dataloader(self) -> ResumableLoader:
        return self._loader(self.test_set, self.batch_size, train=False)

    def record(self) -> dict[str, Any]:
        """What rebuilds this data from a checkpoint alone (see ``IDXDataModule.record``)."""
        return {
            "_target_": f"{type(self).__module__}.{type(self).__qualname__}",
            "images": self.images.record(),
            "caption_classes": self.caption_classes,
            "held_out": self.held_out,
            "drop": self.drop,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "image_shape": list(self.image_shape),
            "num_classes": self.num_classes,
        }

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        images, captions = batch
        return CaptionedBatch(images.unsqueeze(1).float().div_(127.5).sub_(1.0), captions)  # (B, 1, H, W) in [-1, 1]
