"""The domain feature network: a small CNN classifier trained on the real training split of one dataset.

Inception features mean little for 28x28 grey digits and need weights downloaded at run time, so MNIST GAN
papers measure in the feature space of a classifier trained on the data itself. Its penultimate layer feeds
FID and KID; its softmax feeds the Inception-Score analogue and class coverage.

Weights are keyed by dataset and data checksum (``mnist-<sha256[:12]>.pt``): a score is only comparable with
another computed against the same extractor. Those for the bundled MNIST sample and for Fashion-MNIST ship in
``weights/`` (see its README for the command that made them); others are trained on first use and cached.

    python -m ganlab.metrics.classifier data=fashion_mnist           # train, report test accuracy, cache
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import Tensor, nn

import ganlab.config.schemas  # noqa: F401  (registers the config schemas that conf/ extends)
from ganlab.data.idx import read_idx
from ganlab.data.sources import find_idx_files
from ganlab.data.stacked_mnist import StackedMNISTDataModule
from ganlab.metrics.modes import StackedClassifier

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).parent / "weights"  # committed extractors, searched before the cache
CONFIG_DIR = Path(__file__).resolve().parents[3] / "conf"
TRAIN_COMMAND = "python -m ganlab.metrics.classifier"


class DomainClassifier(nn.Module):
    """(B, C, 28, 28) in [-1, 1] -> two conv blocks -> (B, feature_dim) features -> (B, num_classes) logits."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 16, feature_dim: int = 128):
        super().__init__()
        self.arch = {"num_classes": num_classes, "in_channels": in_channels, "width": width, "feature_dim": feature_dim}

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.body = nn.Sequential(
            *block(in_channels, width),
            *block(width, width),
            nn.MaxPool2d(2),  # (B, w, 14, 14)
            *block(width, 2 * width),
            *block(2 * width, 2 * width),
            nn.MaxPool2d(2),  # (B, 2w, 7, 7)
            nn.AdaptiveAvgPool2d(3),
            nn.Flatten(),  # (B, 2w * 9): any input size works
            nn.Linear(2 * width * 9, feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(feature_dim, num_classes))

    def features(self, images: Tensor) -> Tensor:
        return self.body(images)  # (B, feature_dim): what FID and KID compare

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.body(images))  # (B, num_classes) logits


# ---- data and keys ----------------------------------------------------------------------------------------
def real_splits(datamodule: L.LightningDataModule) -> dict[str, Tensor]:
    """The dataset's full training and test splits as read from its IDX files (uint8 images, long labels)."""
    datamodule.setup()  # finds the files (a download or the bundled fallback included); a no-op when done
    files = find_idx_files(datamodule.source)
    return {split: read_idx(path) for split, path in files.items()}


def data_checksum(splits: dict[str, Tensor]) -> str:
    """sha256 of the decoded arrays, so a gzipped and a plain copy of the same data share one extractor."""
    digest = hashlib.sha256()
    for split in sorted(splits):
        digest.update(split.encode())
        digest.update(splits[split].contiguous().numpy().tobytes())
    return digest.hexdigest()


def extractor_key(datamodule: L.LightningDataModule, checksum: str) -> str:
    return f"{_data_option(datamodule)}-{checksum[:12]}"  # e.g. mnist-3f2a9c0d1e7b


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "ganlab" / "feature_nets"


def to_model_input(images: Tensor) -> Tensor:
    return images.unsqueeze(1).float().div(127.5).sub(1.0)  # (N, H, W) uint8 -> (N, 1, H, W) in [-1, 1], as G's output


# ---- training ---------------------------------------------------------------------------------------------
def random_affine(images: Tensor, generator: torch.Generator) -> Tensor:
    """Random rotation (+-10 degrees), scale (0.9-1.1) and shift (+-2 px) per image: small-data regularization."""
    n = images.shape[0]
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(10)
    scale = 1 + (torch.rand(n, generator=generator) * 2 - 1) * 0.1
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * (2 * 2 / images.shape[-1])  # +-2 px in [-1, 1] units
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )  # (N, 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images + 1, grid, align_corners=False) - 1  # +1: pad with the background value -1


@torch.no_grad()
def accuracy(model: DomainClassifier, images: Tensor, labels: Tensor, batch_size: int = 1000) -> float:
    model.eval()
    correct = sum(
        (model(to_model_input(x)).argmax(1) == y).sum().item()
        for x, y in zip(images.split(batch_size), labels.split(batch_size))
    )
    return correct / len(labels)


def train_classifier(
    splits: dict[str, Tensor],
    num_classes: int = 10,
    width: int = 16,
    epochs: int = 15,
    batch_size: int = 128,
    lr: float = 3e-3,
    seed: int = 0,
    augment: bool = True,
) -> tuple[DomainClassifier, float]:
    """Train on the whole training split with AdamW and a one-cycle schedule; return the model and test accuracy."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    images, labels = splits["train_images"], splits["train_labels"].long()
    model = DomainClassifier(num_classes=num_classes, in_channels=1, width=width)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    steps_per_epoch = len(images) // batch_size
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch)
    for epoch in range(epochs):
        model.train()
        start, total_loss = time.perf_counter(), 0.0
        for rows in torch.randperm(len(images), generator=generator)[: steps_per_epoch * batch_size].split(batch_size):
            batch = to_model_input(images[rows])  # (B, 1, H, W)
            batch = random_affine(batch, generator) if augment else batch
            loss = F.cross_entropy(model(batch), labels[rows], label_smoothing=0.05)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total_loss += loss.item()
        log.info(
            "epoch %d/%d: loss %.4f (%.0f s)",
            epoch + 1,
            epochs,
            total_loss / steps_per_epoch,
            time.perf_counter() - start,
        )
    test_accuracy = accuracy(model, splits["test_images"], splits["test_labels"].long())
    return model.eval(), test_accuracy


# ---- storage ----------------------------------------------------------------------------------------------
def save_extractor(model: DomainClassifier, record: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")  # atomic: DDP ranks may train and save at once
    torch.save({"arch": model.arch, "state_dict": model.state_dict(), "record": record}, partial)
    partial.replace(path)


def load_extractor(path: Path) -> tuple[DomainClassifier, dict[str, Any]]:
    stored = torch.load(path, map_location="cpu", weights_only=True)
    model = DomainClassifier(**stored["arch"])
    model.load_state_dict(stored["state_dict"])
    return model.eval(), {**stored["record"], "weights": str(path)}


def extractor_for(
    datamodule: L.LightningDataModule,
    cache_dir: str | Path | None = None,
    train_if_missing: bool = True,
    **train_kwargs: Any,
) -> tuple[DomainClassifier, dict[str, Any]]:
    """The classifier for this datamodule's data: committed weights, else cached ones, else trained and cached.
    Stacked MNIST is read channel by channel by its digits' classifier."""
    if isinstance(datamodule, StackedMNISTDataModule):
        datamodule.setup()  # as real_splits does for the others: its files found, its splits made
        digits, record = extractor_for(datamodule.digit_data(), cache_dir, train_if_missing, **train_kwargs)
        return StackedClassifier(digits), {**record, "key": f"{record['key']} on each channel"}
    splits = real_splits(datamodule)
    key = extractor_key(datamodule, data_checksum(splits))
    cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    for directory in (WEIGHTS_DIR, cache_dir):
        if (directory / f"{key}.pt").is_file():
            return load_extractor(directory / f"{key}.pt")
    command = f"{TRAIN_COMMAND} data={_data_option(datamodule)}"
    if not train_if_missing:
        raise FileNotFoundError(
            f"no feature network for {datamodule.name} ({key}) in {WEIGHTS_DIR} or {cache_dir}; train one with: {command}"
        )
    log.warning(
        "No feature network for %s (%s) yet: training one now and caching it in %s (%s does the same)",
        datamodule.name,
        key,
        cache_dir,
        command,
    )
    return fit_and_save(datamodule, splits, key, cache_dir / f"{key}.pt", command, **train_kwargs)


def prepare_extractor(
    datamodule: L.LightningDataModule,
    cache_dir: str | Path | None = None,
    train_if_missing: bool = True,
    local_rank: int | None = None,
    wait_s: float = 4 * 3600,
    poll_s: float = 2.0,
) -> Path:
    """Make sure the feature network exists before training starts, trained at most once per node; its path.

    Training one takes minutes on a CPU. Left to the first validation, every DDP rank would train its own at
    once, and the wait could outlast the process group's timeout. So ``train`` calls this before ``fit``: local
    rank 0 finds or trains and caches it (Lightning's own launcher starts the other ranks only later, in ``fit``);
    ranks that an external launcher started alongside it (torchrun, SLURM) wait for the file, without any
    collective, for at most ``wait_s`` seconds.
    """
    local_rank = int(os.environ.get("LOCAL_RANK", 0)) if local_rank is None else local_rank
    if isinstance(datamodule, StackedMNISTDataModule):
        datamodule = datamodule.digit_data()  # its channels are read by the digits' classifier
    splits = real_splits(datamodule)
    key = extractor_key(datamodule, data_checksum(splits))
    cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    candidates = [directory / f"{key}.pt" for directory in (WEIGHTS_DIR, cache_dir)]
    found = next((path for path in candidates if path.is_file()), None)
    if found is not None:
        return found
    if local_rank == 0:
        extractor_for(datamodule, cache_dir=cache_dir, train_if_missing=train_if_missing)  # trains, or says how to
        return candidates[-1]
    log.info("Local rank %d: waiting for local rank 0 to train the feature network %s", local_rank, candidates[-1])
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        time.sleep(poll_s)
        if candidates[-1].is_file():
            return candidates[-1]
    raise FileNotFoundError(
        f"local rank {local_rank} waited {wait_s:.0f} s for local rank 0 to train the feature network {candidates[-1]}; "
        f"train it before launching: {TRAIN_COMMAND} data={_data_option(datamodule)}"
    )


def fit_and_save(
    datamodule: L.LightningDataModule,
    splits: dict[str, Tensor],
    key: str,
    path: Path,
    command: str,
    **train_kwargs: Any,
) -> tuple[DomainClassifier, dict[str, Any]]:
    model, test_accuracy = train_classifier(splits, num_classes=datamodule.num_classes, **train_kwargs)
    record = {
        "key": key,
        "dataset": datamodule.name,
        "data_checksum": data_checksum(splits),
        "train_images": len(splits["train_images"]),
        "test_images": len(splits["test_images"]),
        "test_accuracy": test_accuracy,
        "command": command,
        "train_kwargs": train_kwargs,
    }
    save_extractor(model, record, path)
    log.info("%s: test accuracy %.4f on %d images; weights in %s", key, test_accuracy, len(splits["test_images"]), path)
    return model, {**record, "weights": str(path)}


def _data_option(datamodule: L.LightningDataModule) -> str:
    return datamodule.name.lower().replace("-", "_")  # MNIST -> mnist, Fashion-MNIST -> fashion_mnist: conf/data names


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="classifier")
def main(cfg: DictConfig) -> float:
    datamodule = instantiate(cfg.data)
    splits = real_splits(datamodule)
    key = extractor_key(datamodule, data_checksum(splits))
    save_dir = (
        Path(cfg.save_dir).expanduser()
        if cfg.save_dir
        else (Path(cfg.metrics.cache_dir).expanduser() if cfg.metrics.cache_dir else default_cache_dir())
    )
    command = " ".join([TRAIN_COMMAND, *sys.argv[1:]])
    train_kwargs = {
        "width": cfg.width,
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "lr": cfg.lr,
        "seed": cfg.seed,
        "augment": cfg.augment,
    }
    _, record = fit_and_save(datamodule, splits, key, save_dir / f"{key}.pt", command, **train_kwargs)
    print(
        f"{record['dataset']}: held-out test accuracy {record['test_accuracy']:.2%} on {record['test_images']} images -> {record['weights']}"
    )
    return record["test_accuracy"]


if __name__ == "__main__":
    main()
