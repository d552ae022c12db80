"""The base of the MNIST-family LightningDataModules: four IDX files, each split held in memory as one uint8 tensor.

Per-sample PIL transforms halve CPU throughput for small GANs, so batches are index slices of the in-memory
tensor, and images are scaled to [-1, 1] per batch on the device (``on_after_batch_transfer``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from ganlab.config.checks import ConfigError
from ganlab.data.batches import LabelledBatch
from ganlab.data.idx import DataFileError, read_idx
from ganlab.data.samplers import ResumableLoader, SemiSupervisedBatches, index_batch_loader
from ganlab.data.sources import candidate_dirs, find_idx_files, idx_files_present

log = logging.getLogger(__name__)

UNLABELLED = -1  # the label of a training example whose label data.labels_per_class hides


def hide_labels(labels: torch.Tensor, labels_per_class: int, num_classes: int, seed: int) -> torch.Tensor:
    """``labels`` with all but ``labels_per_class`` examples of each class (chosen by ``seed``) set to UNLABELLED."""
    if labels_per_class < 1:
        raise ConfigError(f"data.labels_per_class must be >= 1 (or null to keep every label), got {labels_per_class}")
    generator = torch.Generator().manual_seed(seed)
    kept = labels.new_full(labels.shape, UNLABELLED)
    for label in range(num_classes):
        rows = (labels == label).nonzero().squeeze(1)
        if len(rows) < labels_per_class:
            raise ConfigError(
                f"data.labels_per_class={labels_per_class} but class {label} has only {len(rows)} training images; lower data.labels_per_class"
            )
        chosen = rows[torch.randperm(len(rows), generator=generator)[:labels_per_class]]
        kept[chosen] = label
    if (kept == UNLABELLED).sum() == 0:
        raise ConfigError(
            f"data.labels_per_class={labels_per_class} keeps every label: nothing is left unlabelled; lower it or set it to null"
        )
    return kept


class IDXDataModule(L.LightningDataModule):
    """A dataset stored as the four IDX files of MNIST's layout, served as (image, label) batches.

    Sources, in order: the files under ``root`` (flat, or in torchvision's ``<root>/<Dataset>/raw``), the
    system folders of ``system_dirs``, a torchvision download into ``root`` (when ``download`` and online),
    then ``fallback_dir`` with a warning. Subclasses name the dataset.
    """

    batch_type = LabelledBatch  # what on_after_batch_transfer yields
    name: str
    torchvision_name: str  # the torchvision dataset class, which also names its folder under root
    system_dirs: tuple[Path, ...] = ()
    fallback_dir: Path | None = None
    fallback_note: str = ""
    file_classes: int | None = None  # the classes the label files hold (None: data.num_classes)
    file_name: str | None = None  # the dataset the IDX files are of (None: name), in messages about the files

    def __init__(
        self,
        root: str = "data",
        batch_size: int = 64,
        val_fraction: float = 0.1,
        seed: int = 0,
        download: bool = True,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        num_classes: int = 10,
        discriminator_steps: int = 1,
        labels_per_class: int | None = None,
        fallback: bool = True,
        on_device: bool = True,
    ):
        super().__init__()
        self.root = Path(root).expanduser()
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.seed = seed
        self.download = download
        self.image_shape = tuple(image_shape)
        self.num_classes = num_classes
        # Each training step takes one batch per discriminator step, so a loader batch holds that many.
        self.discriminator_steps = discriminator_steps
        # Semi-supervised training: keep this many training labels per class, hide the rest (None: keep all).
        self.labels_per_class = labels_per_class
        self.source: Path | None = None  # the folder the files were read from, set in setup()
        # Whether other copies (system folders, the bundled sample) may stand in when root holds no files.
        self.fallback = fallback
        self.download_failed = False  # train() and Trainer.fit both call prepare_data: an offline machine is told once
        # Training on a GPU: the training split (uint8, 47 MB for MNIST) copied there once, each batch gathered there.
        self.on_device = on_device
        self._resident: TensorDataset | None = None

    # ---- where the files are --------------------------------------------------------------------------
    def _local_files(self) -> dict[str, Path] | None:
        if self.root.exists() and not self.root.is_dir():
            raise DataFileError(
                f"data.root={self.root} is a file, not a folder; set data.root to the folder that holds the {self.files_dataset} IDX files"
            )
        for directory in candidate_dirs(self.root, self.torchvision_name):
            files = find_idx_files(directory)
            if files is not None:
                return files
            partial = idx_files_present(directory)
            if partial:
                names = ", ".join(path.name for path in partial)
                raise DataFileError(
                    f"{directory} holds only some of the {self.files_dataset} IDX files ({names}); add the missing ones "
                    f"(train/t10k images and labels) or remove these so that they are downloaded again"
                )
        for directory in self.system_dirs if self.fallback else ():
            files = find_idx_files(directory)
            if files is not None:
                return files
        return None

    @property
    def files_dataset(self) -> str:
        """The dataset the IDX files are of, for messages about them (Stacked MNIST reads MNIST's)."""
        return self.file_name or self.name

    def prepare_data(self) -> None:
        """Download once (Lightning calls this on one process per node) when the files are not on disk."""
        if self._local_files() is not None or not self.download or self.download_failed:
            return
        from torchvision import datasets

        try:
            getattr(datasets, self.torchvision_name)(str(self.root), train=True, download=True)
        except Exception as err:  # offline: URLError, socket errors, HTTP errors; setup() falls back or explains
            self.download_failed = True
            log.warning(
                "Could not download %s into %s: %s",
                self.files_dataset,
                self.root,
                str(err).splitlines()[-1] if str(err) else err,
            )

    def _files(self) -> dict[str, Path]:
        files = self._local_files()
        if files is not None:
            return files
        if not self.fallback:
            state = "does not exist" if not self.root.exists() else f"holds no {self.files_dataset} IDX files"
            raise DataFileError(
                f"data.root={self.root} {state} and nothing could be downloaded into it; fix data.root, "
                f"or drop it to use the default data dir (and its fallbacks). {self._how_to_supply()}"
            )
        if self.fallback_dir is not None:
            log.warning(
                "%s was not found under %s and could not be downloaded: using %s. %s",
                self.files_dataset,
                self.root,
                self.fallback_note,
                self._how_to_supply(),
            )
            return find_idx_files(self.fallback_dir)
        raise DataFileError(
            f"no {self.files_dataset} IDX files under {self.root} and none could be downloaded; {self._how_to_supply()}"
        )

    def _how_to_supply(self) -> str:
        stems = "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte"
        return (
            f"To use full {self.files_dataset}, put its four IDX files ({stems}; .gz or not) in {self.root} "
            f"or {self.root / self.torchvision_name / 'raw'}, set data.root to where they are, or run once online"
        )

    # ---- loading ---------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if getattr(self, "train_set", None) is not None:
            return
        files = self._files()
        self.source = files["train_images"].parent
        images, labels = read_idx(files["train_images"]), read_idx(files["train_labels"]).long()
        test_images, test_labels = read_idx(files["test_images"]), read_idx(files["test_labels"]).long()
        for images_path, labels_path, x, y in [
            (files["train_images"], files["train_labels"], images, labels),
            (files["test_images"], files["test_labels"], test_images, test_labels),
        ]:
            if tuple(x.shape[1:]) != self.image_shape[1:]:
                raise DataFileError(
                    f"{images_path}: images are {tuple(x.shape[1:])}, data.image_shape expects {self.image_shape[1:]}; fix data.image_shape or the file"
                )
            if len(x) != len(y):
                raise DataFileError(
                    f"{labels_path}: {len(y)} labels for {len(x)} images in {images_path.name}; replace the mismatched file"
                )
        classes = self.file_classes or self.num_classes
        for labels_path, y in [(files["train_labels"], labels), (files["test_labels"], test_labels)]:
            bad = y[(y < 0) | (y >= classes)]
            if len(bad):
                raise DataFileError(
                    f"{labels_path}: {len(bad)} labels outside 0..{classes - 1} (e.g. {int(bad[0])}); "
                    f"set data.num_classes to the number of classes, or fix the file"
                )
        if not 0 < self.val_fraction < 1:
            raise ConfigError(
                f"data.val_fraction={self.val_fraction} must be in (0, 1); set data.val_fraction to a value in range, e.g. data.val_fraction=0.1"
            )
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(self.seed))
        num_val = int(round(len(images) * self.val_fraction))
        val_rows, train_rows = order[:num_val], order[num_val:]
        self._check_split_sizes(len(train_rows), num_val, len(test_images), files)
        train_labels = labels[train_rows]
        if self.labels_per_class is not None:
            train_labels = hide_labels(train_labels, self.labels_per_class, self.num_classes, self.seed)
        self.train_set = TensorDataset(images[train_rows], train_labels)  # images: (N, H, W) uint8; labels: (N,)
        self.val_set = TensorDataset(images[val_rows], labels[val_rows])
        self.test_set = TensorDataset(test_images, test_labels)
        log.info(
            "%s from %s: %d train, %d val, %d test images",
            self.name,
            self.source,
            len(self.train_set),
            len(self.val_set),
            len(test_images),
        )

    def _check_split_sizes(self, num_train: int, num_val: int, num_test: int, files: dict[str, Path]) -> None:
        """An empty split stops here with one line."""
        if num_train == 0 or num_test == 0:
            split, path = ("training", files["train_images"]) if num_train == 0 else ("test", files["test_images"])
            raise DataFileError(f"{path}: the {split} split is empty; replace the file or lower data.val_fraction")
        if num_val == 0:
            raise ConfigError(
                f"data.val_fraction={self.val_fraction} leaves an empty validation split of {num_train} images; raise data.val_fraction"
            )

    def _loader(self, dataset: TensorDataset, batch_size: int, train: bool) -> DataLoader:
        return index_batch_loader(dataset, batch_size, train, self.seed, self.trainer)

    def _check_batch_fits(self) -> None:
        """A training batch larger than the training split stops before training (Lightning would say "No training
        batches" and exit 0 having trained nothing). Checked here, not in setup(): a small split can be inspected."""
        trainer = self.trainer
        world_size = trainer.world_size if trainer is not None else 1
        num_train = len(self.train_set)
        needed = self.batch_size * self.discriminator_steps * world_size
        if needed > num_train:
            detail = f" x {self.discriminator_steps} discriminator steps" if self.discriminator_steps > 1 else ""
            detail += f" x {world_size} ranks" if world_size > 1 else ""
            raise ConfigError(
                f"data.batch_size={self.batch_size}{detail} needs {needed} training images a step, but the training "
                f"split has {num_train}; set data.batch_size to at most {num_train // (needed // self.batch_size)}"
            )

    def training_device(self) -> torch.device:
        """Where the training batches are gathered: the GPU a run trains on (``data.on_device``), else the CPU."""
        trainer = self.trainer
        device = trainer.strategy.root_device if trainer is not None else torch.device("cpu")
        return device if self.on_device and device.type == "cuda" else torch.device("cpu")

    def train_dataloader(self) -> DataLoader:
        self._check_batch_fits()
        if self.labels_per_class is None:
            device = self.training_device()
            if device.type != "cpu" and (self._resident is None or self._resident.tensors[0].device != device):
                self._resident = TensorDataset(*(t.to(device) for t in self.train_set.tensors))
            dataset = self.train_set if device.type == "cpu" else self._resident
            return index_batch_loader(
                dataset, self.batch_size * self.discriminator_steps, True, self.seed, self.trainer, device=device
            )
        labels = self.train_set.tensors[1]
        trainer = self.trainer
        rank, world_size = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        sampler = SemiSupervisedBatches(
            unlabelled=(labels == UNLABELLED).nonzero().squeeze(1),
            labelled=(labels != UNLABELLED).nonzero().squeeze(1),
            batch_size=self.batch_size,
            chunks=self.discriminator_steps,
            seed=self.seed,
            rank=rank,
            world_size=world_size,
        )
        return ResumableLoader(self.train_set, batch_size=None, sampler=sampler)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.batch_size, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, self.batch_size, train=False)

    def record(self) -> dict[str, Any]:
        """What rebuilds this data without the run's config: the model writes it into every checkpoint, so
        ``evaluate.py`` and ``sample.py`` need nothing but the checkpoint."""
        return {
            "_target_": f"{type(self).__module__}.{type(self).__qualname__}",
            "root": str(self.root),
            "val_fraction": self.val_fraction,
            "seed": self.seed,
            "image_shape": list(self.image_shape),
            "num_classes": self.num_classes,
        }

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        images, labels = batch
        images = images.unsqueeze(1).float().div_(127.5).sub_(1.0)  # (B, H, W) uint8 -> (B, 1, H, W) in [-1, 1]
        return LabelledBatch(images, labels)
