"""Fashion-MNIST (``data=fashion_mnist``): from data.root, Debian's dataset-fashion-mnist package, or a download."""

from __future__ import annotations

from pathlib import Path

from ganlab.data.idx_datamodule import IDXDataModule


class FashionMNISTDataModule(IDXDataModule):
    name = "Fashion-MNIST"
    torchvision_name = "FashionMNIST"
    system_dirs = (Path("/usr/share/datasets/fashion-mnist"),)  # Debian's dataset-fashion-mnist package
