"""Data: IDX files, where they come from, what goes wrong, and how batches are served."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from ganlab.data.fashion_mnist import FashionMNISTDataModule
from ganlab.data.idx import DataFileError, read_idx, write_idx
from ganlab.data.mnist import MNISTDataModule
from ganlab.data.samplers import EpochBatches
from ganlab.data.sources import BUNDLED_MNIST_SAMPLE

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def write_dataset(directory: Path, num_train: int = 50, num_test: int = 20, gz: bool = False) -> None:
    """Four IDX files cut from the bundled real digits."""
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for split, count in (("train", num_train), ("t10k", num_test)):
        images = read_idx(BUNDLED_MNIST_SAMPLE / f"{split}-images-idx3-ubyte.gz")[:count]
        labels = read_idx(BUNDLED_MNIST_SAMPLE / f"{split}-labels-idx1-ubyte.gz")[:count]
        write_idx(directory / f"{split}-images-idx3-ubyte{suffix}", images.numpy())
        write_idx(directory / f"{split}-labels-idx1-ubyte{suffix}", labels.numpy())


def test_idx_round_trip(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    for name in ("x-idx3-ubyte", "x-idx3-ubyte.gz"):
        write_idx(tmp_path / name, array)
        assert torch.equal(read_idx(tmp_path / name), torch.from_numpy(array))


@pytest.mark.parametrize("damage", ["truncate", "bad_header", "bad_gzip"])
def test_damaged_file_gets_one_line_error_naming_path_and_fix(tmp_path, damage):
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, np.zeros((10, 28, 28), np.uint8))
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[:-100])
    elif damage == "bad_header":
        path.write_bytes(b"\x01\x02" + raw[2:])
    else:
        path = tmp_path / "train-images-idx3-ubyte.gz"
        path.write_bytes(gzip.compress(raw)[:50])
    with pytest.raises(DataFileError) as error:
        read_idx(path)
    message = str(error.value)
    assert str(path) in message and "\n" not in message
    assert "replace" in message or "delete" in message


@pytest.mark.parametrize("layout", ["flat", "torchvision"])
@pytest.mark.parametrize("gz", [False, True])
def test_reads_files_under_root_in_either_layout(tmp_path, layout, gz):
    directory = tmp_path if layout == "flat" else tmp_path / "MNIST" / "raw"
    write_dataset(directory, gz=gz)
    data = MNISTDataModule(root=str(tmp_path), download=False, val_fraction=0.2)
    data.setup("fit")
    assert data.source == directory
    assert (len(data.train_set), len(data.val_set), len(data.test_set)) == (40, 10, 20)


def test_offline_falls_back_to_bundled_sample_with_warning(tmp_path, caplog):
    """No files and no network here: the download fails for real and the bundled digits are used."""
    data = MNISTDataModule(root=str(tmp_path / "mnist"), download=True)
    with caplog.at_level(logging.WARNING):
        data.prepare_data()
        data.setup("fit")
    assert data.source == BUNDLED_MNIST_SAMPLE
    assert len(data.train_set) + len(data.val_set) == 9000 and len(data.test_set) == 1000
    warning = " ".join(record.getMessage() for record in caplog.records)
    assert "bundled sample" in warning and "full MNIST" in warning


def test_root_that_is_a_file_is_named_in_the_error(tmp_path):
    root = tmp_path / "not_a_folder"
    root.write_text("")
    with pytest.raises(DataFileError, match="is a file, not a folder"):
        MNISTDataModule(root=str(root), download=False).setup("fit")


def test_root_with_some_files_missing_is_named_in_the_error(tmp_path):
    write_dataset(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataFileError, match="only some of the MNIST IDX files"):
        MNISTDataModule(root=str(tmp_path), download=False).setup("fit")


def test_corrupt_file_under_root_stops_setup(tmp_path):
    write_dataset(tmp_path)
    images = tmp_path / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:1000])
    with pytest.raises(DataFileError, match="truncated"):
        MNISTDataModule(root=str(tmp_path), download=False).setup("fit")


def test_fashion_mnist_without_files_or_network_explains(tmp_path, monkeypatch):
    monkeypatch.setattr(FashionMNISTDataModule, "system_dirs", ())  # as on a machine without the Debian package
    with pytest.raises(DataFileError, match="no Fashion-MNIST IDX files under"):
        FashionMNISTDataModule(root=str(tmp_path), download=False).setup("fit")


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_found_in_debian_package(tmp_path):
    data = FashionMNISTDataModule(root=str(tmp_path), download=False)
    data.setup("fit")
    assert data.source == DEBIAN_FASHION
    assert len(data.train_set) + len(data.val_set) == 60000 and len(data.test_set) == 10000


def test_batches_scaled_to_minus_one_one_with_channel_axis(tmp_path):
    write_dataset(tmp_path)
    data = MNISTDataModule(root=str(tmp_path), download=False, batch_size=8, val_fraction=0.2)
    data.setup("fit")
    images, labels = data.on_after_batch_transfer(next(iter(data.train_dataloader())), 0)
    assert images.shape == (8, 1, 28, 28) and images.dtype == torch.float32 and labels.shape == (8,)
    assert images.min() == -1 and images.max() == 1


def test_train_batches_hold_one_chunk_per_discriminator_step(tmp_path):
    write_dataset(tmp_path)
    data = MNISTDataModule(root=str(tmp_path), download=False, batch_size=4, val_fraction=0.2, discriminator_steps=3)
    data.setup("fit")
    assert len(next(iter(data.train_dataloader()))[0]) == 12
    assert len(next(iter(data.val_dataloader()))[0]) == 4


def test_epoch_batches_seeded_reshuffled_and_sharded_across_ranks():
    def epoch(rank, world_size, epoch_number, seed=0):
        sampler = EpochBatches(103, 10, shuffle=True, seed=seed, drop_last=True, rank=rank, world_size=world_size)
        sampler.set_epoch(epoch_number)
        return [batch.tolist() for batch in sampler]

    assert epoch(0, 1, 0) == epoch(0, 1, 0)  # same seed and epoch: same order
    assert epoch(0, 1, 0) != epoch(0, 1, 1)  # a new epoch reshuffles
    assert epoch(0, 1, 0) != epoch(0, 1, 0, seed=1)
    rank0, rank1 = epoch(0, 2, 0), epoch(1, 2, 0)
    assert len(rank0) == len(rank1) == 5  # equal counts keep DDP collectives in step
    seen0, seen1 = {i for b in rank0 for i in b}, {i for b in rank1 for i in b}
    assert not seen0 & seen1  # disjoint shards
    sampler = EpochBatches(103, 10, shuffle=False, seed=0, drop_last=False, rank=0, world_size=1)
    assert len(sampler) == len(list(sampler)) == 11 and list(sampler)[-1].tolist() == [100, 101, 102]


def test_validation_split_is_fixed_by_seed(tmp_path):
    write_dataset(tmp_path)
    splits = []
    for seed in (0, 0, 1):
        data = MNISTDataModule(root=str(tmp_path), download=False, seed=seed, val_fraction=0.2)
        data.setup("fit")
        splits.append(data.val_set.tensors[0])
    assert torch.equal(splits[0], splits[1]) and not torch.equal(splits[0], splits[2])
