"""Stacked MNIST: the stacking (three independent digits per image, labels their mode), a fresh seeded draw per
epoch that a resume repeats, the published mode metric on real stacks and on a collapsed generator, and colour
images through training."""

from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from ganlab.data.sources import BUNDLED_MNIST_SAMPLE
from ganlab.data.stacked_mnist import StackedBatches, StackedMNISTDataModule, draw_stacks, stack
from ganlab.evaluate import evaluate
from ganlab.metrics.classifier import extractor_for, to_model_input
from ganlab.metrics.modes import (
    PUBLISHED_SAMPLES,
    StackedClassifier,
    channel_digit_shares,
    kl_parts,
    missing_digits,
    mode_coverage,
    modes_of_digits,
    sampling_floor,
    stacked_modes,
)
from ganlab.train import train

from conftest import app_config


@pytest.fixture(scope="module")
def stacked():
    datamodule = StackedMNISTDataModule(root=str(BUNDLED_MNIST_SAMPLE), download=False, batch_size=32)
    datamodule.setup()
    return datamodule


def test_each_channel_is_a_digit_of_the_split_and_the_label_is_their_mode(stacked):
    loader = stacked.train_dataloader()
    rows = next(iter(loader.sampler))  # (B, 3) digit rows
    images, modes = loader.dataset[rows]
    digit_images, digit_labels = stacked.digits["train"].tensors
    assert images.shape == (32, 3, 28, 28) and images.dtype == torch.uint8
    for channel in range(3):
        assert torch.equal(images[:, channel], digit_images[rows[:, channel]])
    assert torch.equal(modes, 100 * digit_labels[rows[:, 0]] + 10 * digit_labels[rows[:, 1]] + digit_labels[rows[:, 2]])


def test_messages_about_its_files_name_mnist_whose_files_they_are(tmp_path, caplog):
    datamodule = StackedMNISTDataModule(root=str(tmp_path / "empty"), download=False, fallback=True)
    with caplog.at_level("WARNING", logger="ganlab"):
        datamodule.setup()
    (warning,) = [record.getMessage() for record in caplog.records if "was not found" in record.getMessage()]
    assert warning.startswith("MNIST was not found") and "To use full MNIST, put its four IDX files" in warning


def test_the_three_digits_are_drawn_independently():
    labels = torch.arange(10).repeat(100)  # a balanced digit split
    rows = draw_stacks(len(labels), 100_000, seed=0)
    digits = labels[rows]  # (N, 3)
    joint = torch.bincount(digits[:, 0] * 10 + digits[:, 1], minlength=100).double() / len(digits)
    assert (joint - 0.01).abs().max() < 0.002  # pairs as often as independence says (each about 1,000 times)
    assert (rows[:, 0] == rows[:, 1]).float().mean() < 0.01  # not one digit copied into every channel


def test_each_epoch_draws_afresh_and_a_resumed_epoch_goes_on_with_the_same_batches():
    def sampler(epoch):
        s = StackedBatches(500, batch_size=50, shuffle=True, seed=3, drop_last=True)
        s.set_epoch(epoch)
        return s

    first, again, second = list(sampler(0)), list(sampler(0)), list(sampler(1))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(torch.cat(first), torch.cat(second))
    interrupted = sampler(0)
    it = iter(interrupted)
    for _ in range(4):
        next(it)
    resumed = sampler(0)
    resumed.load_state_dict(interrupted.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(list(resumed), first[4:]))
    assert len(list(sampler(0))) == 10


def test_real_stacks_hit_every_mode_near_the_sampling_floor_and_one_image_hits_one(stacked):
    classifier, _ = extractor_for(stacked.digit_data())
    digits = stacked.digits["train"]
    digit_images = digits.tensors[0]
    rows = draw_stacks(len(digit_images), PUBLISHED_SAMPLES, seed=7)
    images, labels = stack(digits, rows)
    # Each channel is a copy of a digit image: the classifier's reading of every digit once gives every stack's
    # mode (78,000 channel readings would take minutes here); stacked_modes itself is checked on a part.
    with torch.no_grad():
        read = torch.cat([classifier(to_model_input(x)).argmax(1) for x in digit_images.split(1000)])
    modes = modes_of_digits(read[rows])
    part = images[:300].float().div(127.5).sub(1)
    assert torch.equal(stacked_modes(classifier, part), modes[:300])
    with torch.no_grad():  # the scores' classifier: its 1,000 logits' argmax is the same mode
        assert torch.equal(StackedClassifier(classifier).eval()(part).argmax(1), modes[:300])
    real = mode_coverage(modes)
    assert real["modes"] == 1000
    floor = sampling_floor(PUBLISHED_SAMPLES)
    assert floor < real["mode_kl"] < 2 * floor  # sampling, and the classifier's few errors
    assert mode_coverage(labels)["modes"] == 1000 and mode_coverage(labels)["mode_kl"] < 2 * floor
    collapsed = images[:1].float().div(127.5).sub(1).expand(500, -1, -1, -1)  # a generator of one stacked image
    one = mode_coverage(stacked_modes(classifier, collapsed))
    assert one["modes"] == 1 and one["mode_kl"] == pytest.approx(math.log(1000))


def test_the_missing_digits_of_each_channel_are_read_from_the_mode_histogram():
    digits = torch.stack(torch.meshgrid(*[torch.arange(10)] * 3, indexing="ij"), -1).view(-1, 3)  # mode m: its digits
    weights = torch.ones(1000)
    weights[digits[:, 1] == 4] = 0  # green never draws a 4
    weights[digits[:, 2] == 7] = 0.2  # blue draws a 7 a fifth as often as the others
    shares = weights / weights.sum()
    per_channel = channel_digit_shares(shares)
    assert per_channel.shape == (3, 10) and torch.allclose(per_channel.sum(1), torch.ones(3, dtype=torch.float64))
    assert per_channel[0].allclose(torch.full((10,), 0.1, dtype=torch.float64))  # red untouched
    assert missing_digits(shares) == {1: [4], 2: [7]}
    assert missing_digits(torch.full((1000,), 1e-3)) == {}


def test_the_kl_splits_into_the_channels_digit_shares_and_their_dependence():
    digits = torch.stack(torch.meshgrid(*[torch.arange(10)] * 3, indexing="ij"), -1).view(-1, 3)
    blue = torch.linspace(1, 2, 10, dtype=torch.float64)  # independent channels, blue's digits uneven
    independent = blue[digits[:, 2]] / blue[digits[:, 2]].sum()
    parts = kl_parts(independent)
    blue_kl = float(((blue / blue.sum()) * (blue / blue.sum() * 10).log()).sum())
    assert parts["channels"] == pytest.approx([0, 0, blue_kl]) and parts["dependence"] == pytest.approx(0, abs=1e-12)

    same = (digits[:, 0] == digits[:, 1]) & (digits[:, 1] == digits[:, 2])  # 000, 111, ...: every channel uniform
    parts = kl_parts(same.double())
    assert parts["channels"] == pytest.approx([0, 0, 0], abs=1e-12)
    assert parts["dependence"] == pytest.approx(math.log(100))  # the KL of 10 modes of 1,000, all of it coupling
    shares = torch.rand(1000, generator=torch.Generator().manual_seed(0)) ** 4
    modes = torch.multinomial(shares, 20_000, replacement=True, generator=torch.Generator().manual_seed(1))
    counts = torch.bincount(modes, minlength=1000)
    parts = kl_parts(counts)
    assert sum(parts["channels"]) + parts["dependence"] == pytest.approx(mode_coverage(modes)["mode_kl"])


@pytest.mark.parametrize(
    "model",
    [
        ["model=dcgan"],
        ["model=mlp"],
        # PacGAN's packing, with an epoch end: the validation batches go through the packing D too
        [
            "model=dcgan",
            "model.discriminator.packing=2",
            "trainer.limit_train_batches=1",
            "trainer.limit_val_batches=1",
        ],
    ],
)
def test_unconditional_models_train_on_colour_stacks(make_cfg, model):
    cfg = make_cfg(
        [
            *model,
            "data=stacked_mnist",
            "trainer.max_steps=2",
            "++callbacks.fid=null",
            "++callbacks.best_fid_checkpoint=null",
        ]
    )
    result = train(cfg)
    assert result["trainer"].global_step == 2
    images = result["model"].generate(4)
    assert images.shape == (4, 3, 28, 28) and torch.isfinite(images).all()


def test_colour_runs_are_scored_in_modes_and_drawn_in_colour(make_cfg, tmp_path, capsys):
    """val/modes and val/coverage_kl (the published KL) during training, FID in the channels' features, a colour
    sample grid; evaluate.py from the checkpoint alone prints the modes hit."""
    cfg = make_cfg(
        [
            "data=stacked_mnist",
            "trainer.max_steps=4",
            "trainer.limit_train_batches=2",
            "callbacks.fid.num_samples=300",
            "metrics.kid_subset_size=100",
            "logger=csv",
        ]
    )
    metrics = train(cfg)["metrics"]
    assert 1 <= metrics["val/modes"] <= 300 and 0 <= metrics["val/coverage_kl"] <= math.log(1000) + 1e-6
    assert math.isfinite(metrics["val/fid"])
    grid = Image.open(sorted((tmp_path / "samples").glob("step_*.png"))[-1])
    assert grid.mode == "RGB" and len(set(grid.getdata())) > 256  # colours, not one grey ramp
    out = tmp_path / "evaluate"
    scored = evaluate(
        app_config(
            "evaluate",
            out,
            [f"ckpt_path={tmp_path / 'checkpoints' / 'last.ckpt'}", "num_samples=500", "metrics.kid_subset_size=100"],
        )
    )
    assert scored["dataset"] == "Stacked MNIST" and len(scored["class_shares"]) == 1000
    assert "on each channel" in scored["feature_extractor"]["key"]
    assert f"{scored['modes']}/1000 classes drawn" in capsys.readouterr().out
