"""Stacked MNIST (``data=stacked_mnist``): three MNIST digits as the red, green and blue channels of one image.

The mode-collapse benchmark of Metz et al. 2017 (Unrolled GANs), Srivastava et al. 2017 (VEEGAN) and Lin et al.
2018 (PacGAN): 1,000 modes, 000 to 999, each image's label its mode (100 x red digit + 10 x green + blue).
``ganlab.metrics.modes`` reads each channel of generated images with the MNIST classifier and counts the modes.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, TensorDataset

from ganlab.data.batches import LabelledBatch
from ganlab.data.mnist import MNISTDataModule
from ganlab.data.samplers import EpochBatches, ResumableLoader
from ganlab.metrics.modes import modes_of_digits

CHANNELS = 3


def draw_stacks(num_digits: int, count: int, seed: int) -> Tensor:
    """``count`` triples of digit rows (count, 3), each digit drawn independently and uniformly, seeded."""
    return torch.randint(num_digits, (count, CHANNELS), generator=torch.Generator().manual_seed(seed))


def stack(digits: TensorDataset, rows: Tensor) -> tuple[Tensor, Tensor]:
    """The stacked images (B, 3, H, W) uint8 of digit rows (B, 3), and their modes (B,)."""
    images, labels = digits.tensors
    return images[rows], modes_of_digits(labels[rows])


class StackedDigits(Dataset):
    """Stacked images of one digit split, indexed by (B, 3) rows: (uint8 images (B, 3, H, W), modes (B,))."""

    def __init__(self, digits: TensorDataset):
        self.digits = digits

    def __len__(self) -> int:
        return len(self.digits)

    def __getitem__(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        return stack(self.digits, rows)


class StackedBatches(EpochBatches):
    """``EpochBatches`` (seeded, sharded, resumable) whose batches are (B, 3) digit rows: each epoch draws its own
    stacks, so training sees a fresh draw every epoch, the same on every rank and after a resume."""

    def __iter__(self):
        stacks = draw_stacks(self.size, self.size, self.seed + 1_000_003 * (self.epoch + 1)).to(self.device)
        for positions in super().__iter__():
            yield stacks[positions]


class StackedMNISTDataModule(MNISTDataModule):
    """MNIST's splits (``data.root``, a download, or the bundled sample), served as stacked colour images.

    Training: a fresh seeded draw of stacks each epoch, as many stacks as training digits. Validation and test:
    one fixed draw from their own digit splits (``train_set``, ``val_set`` and ``test_set`` hold the stacks of
    the first draw, for code that reads the real images, such as the scores' real features).
    """

    name = "Stacked MNIST"
    file_classes = 10  # the IDX files hold digits
    file_name = "MNIST"  # they are MNIST's: "MNIST was not found", "to use full MNIST, put its four IDX files ..."

    def __init__(self, image_shape: tuple[int, int, int] = (CHANNELS, 28, 28), num_classes: int = 1000, **kwargs: Any):
        if tuple(image_shape)[0] != CHANNELS or num_classes != 10**CHANNELS:
            raise ValueError(
                f"data=stacked_mnist stacks three digits: data.image_shape must be [3, H, W] and data.num_classes "
                f"1000, got {list(image_shape)} and {num_classes}"
            )
        super().__init__(image_shape=image_shape, num_classes=num_classes, **kwargs)

    def setup(self, stage: str | None = None) -> None:
        if getattr(self, "digits", None) is not None:
            return
        super().setup(stage)
        self.digits = {"train": self.train_set, "val": self.val_set, "test": self.test_set}
        for split, offset in (("train", 0), ("val", 1), ("test", 2)):
            digits = self.digits[split]
            stacked = stack(digits, draw_stacks(len(digits), len(digits), self.seed + offset))
            setattr(self, f"{split}_set", TensorDataset(*stacked))

    def digit_data(self) -> MNISTDataModule:
        """The MNIST data whose digits are stacked here: its classifier reads each channel (``metrics.modes``)."""
        return MNISTDataModule(
            root=str(self.root),
            val_fraction=self.val_fraction,
            seed=self.seed,
            download=self.download,
            fallback=self.fallback,
        )

    def train_dataloader(self) -> DataLoader:
        self._check_batch_fits()
        device = self.training_device()
        digits = self.digits["train"]
        if device.type != "cpu":
            digits = TensorDataset(*(t.to(device) for t in digits.tensors))
        trainer = self.trainer
        rank, world_size = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        sampler = StackedBatches(
            len(digits),
            self.batch_size * self.discriminator_steps,
            shuffle=True,
            seed=self.seed,
            drop_last=True,
            rank=rank,
            world_size=world_size,
            device=device,
        )
        return ResumableLoader(StackedDigits(digits), batch_size=None, sampler=sampler)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        images, labels = batch
        return LabelledBatch(images.float().div_(127.5).sub_(1.0), labels)  # (B, 3, H, W) uint8 -> [-1, 1]
