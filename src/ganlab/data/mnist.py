"""MNIST (``data=mnist``): from data.root, else a download, else the bundled 10,000-digit sample with a warning."""

from __future__ import annotations

from ganlab.data.idx_datamodule import IDXDataModule
from ganlab.data.sources import BUNDLED_MNIST_SAMPLE


class MNISTDataModule(IDXDataModule):
    name = "MNIST"
    torchvision_name = "MNIST"
    fallback_dir = BUNDLED_MNIST_SAMPLE
    fallback_note = "the bundled sample of 10,000 real MNIST digits (9,000 train, 1,000 test)"
