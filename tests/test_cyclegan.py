"""CycleGAN (experiment=cyclegan): both domains' networks train with every loss, on one and two ranks; the
translation scores are logged; evaluate.py and sample.py work from the checkpoint alone. Exact resume is in
test_resume.py (MODELS), the two-domain data in test_data.py's style below."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganlab.data.digits_to_mnist import DigitsToMNISTDataModule
from ganlab.data.mnist import MNISTDataModule
from ganlab.data.samplers import TwoDomainBatches, UnpairedBatches
from ganlab.data.uci_digits import UCIDigitsDataModule
from ganlab.evaluate import evaluate
from ganlab.models.cyclegan import ImagePool
from ganlab.sample import sample
from ganlab.train import train

from conftest import app_config, compose_config
from families import FAMILIES
from recorders import LearningRates, find

REPO = Path(__file__).resolve().parents[1]
NETWORKS = ("generator_ab.", "generator_ba.", "discriminator_a.", "discriminator_b.")
# The family's small networks, 4 + 4 images a step, epochs of 4 steps (so a short run validates).
SMALL = FAMILIES["cyclegan"].overrides("trainer.limit_train_batches=4", "logger=csv", "model.pool_size=50")


# ---- data ------------------------------------------------------------------------------------------------
def test_uci_digits_are_the_bundled_28x28_copy_with_their_own_split():
    data = UCIDigitsDataModule(root="nowhere", seed=0)
    data.setup()
    images, labels = data.train_set.tensors
    assert (
        images.shape == (1293, 28, 28)
        and images.dtype == torch.uint8
        and len(data.val_set) == 144
        and len(data.test_set) == 360
    )
    assert sorted(labels.unique().tolist()) == list(range(10))
    assert images[:, :4].max() == 0 and images[:, :, -4:].max() == 0  # MNIST's framing: a 4-pixel black border


def test_unpaired_batches_cover_the_larger_domain_draw_the_smaller_and_resume():
    sampler = UnpairedBatches(size_a=10, size_b=40, batch_size=4, seed=1)
    batches = list(sampler)
    assert len(batches) == 10 and all(batch.shape == (2, 4) for batch in batches)
    assert sorted(torch.cat([b[1] for b in batches]).tolist()) == list(range(40))  # one pass over B
    assert torch.cat([b[0] for b in batches]).max() < 10  # A drawn over and over
    iterator = iter(sampler)
    first = [next(iterator) for _ in range(3)]
    resumed = UnpairedBatches(size_a=10, size_b=40, batch_size=4, seed=1)
    resumed.load_state_dict(sampler.state_dict())
    assert [b.tolist() for b in first + list(resumed)] == [b.tolist() for b in batches]


def test_evaluation_batches_visit_every_image_of_both_domains_once_per_rank_shard():
    seen = {0: [], 1: []}
    for rank in (0, 1):
        batches = list(TwoDomainBatches(size_a=6, size_b=20, batch_size=4, rank=rank, world_size=2))
        assert len(batches) == 3  # both ranks: the same number of batches
        for a, b in batches:
            seen[0] += a.tolist()
            seen[1] += b.tolist()
    assert sorted(seen[0]) == list(range(6)) and sorted(seen[1]) == list(range(20))


def test_two_domain_batches_hold_images_of_both_domains_and_no_labels_in_training():
    data = DigitsToMNISTDataModule(
        UCIDigitsDataModule(seed=0), MNISTDataModule(root="nowhere", download=False, seed=0), batch_size=5
    )
    data.setup()
    a, b = data.on_after_batch_transfer(next(iter(data.train_dataloader())), 0)
    assert a.shape == b.shape == (5, 1, 28, 28) and a.min() >= -1 and b.max() <= 1
    a, a_labels, b, b_labels = data.on_after_batch_transfer(next(iter(data.val_dataloader())), 0)
    assert a.shape[1:] == (1, 28, 28) and len(a_labels) == len(a) and len(b_labels) == len(b)
    assert data.record()["domain_a"]["_target_"] == "ganlab.data.uci_digits.UCIDigitsDataModule"


def test_image_pool_returns_new_images_until_full_then_mixes_in_old_ones():
    pool = ImagePool(4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first)
    torch.manual_seed(0)
    mixed = pool.query(torch.full((64, 1, 1, 1), 9.0))
    old = (mixed < 4).sum().item()
    assert 0 < old <= 64 and len(pool.images) == 4
    assert torch.equal(ImagePool(0).query(first), first)


# ---- training --------------------------------------------------------------------------------------------
def test_learning_rates_decay_linearly_to_zero(make_cfg):
    """A Lightning lr_scheduler per optimizer, a function of the generator update: the rates each update used."""
    overrides = [
        "trainer.max_steps=4",
        "model.lr_decay_start=2",
        "callbacks.fid=null",
        "callbacks.best_fid_checkpoint=null",
    ]
    result = train(make_cfg([*SMALL, *overrides, "+callbacks.rates._target_=recorders.LearningRates"]))
    assert [result["model"].lr_factor(step) for step in range(5)] == [1.0, 1.0, 1.0, 0.5, 0.0]
    rates = find(result["trainer"], LearningRates).used
    expected = [[2e-4 * factor] * 2 for factor in (1.0, 1.0, 1.0, 0.5)]  # (D, G) at updates 0-3
    assert torch.allclose(torch.tensor(rates), torch.tensor(expected))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A short run that validates once (an epoch of 4 steps), with EMA of the weights."""
    run_dir = tmp_path_factory.mktemp("cyclegan")
    result = train(
        compose_config(
            run_dir,
            [*SMALL, "trainer.max_steps=4", "callbacks=[default,ema]", "callbacks.ema.decay=0.5"],
        )
    )
    metrics = result["metrics"]
    for name in [
        "label_preservation_ab",
        "label_preservation_ba",
        "fid_ab",
        "fid_ba",
        "cycle_error_a",
        "cycle_error_b",
        "baseline_label_preservation_ab",
        "baseline_fid_ab",
        "fid",
    ]:
        assert np.isfinite(metrics[f"val/{name}"]), name
    # The untranslated UCI digits read as MNIST digits about half the time: the baseline to beat.
    assert 0.3 < metrics["val/baseline_label_preservation_ab"] < 0.8
    assert (run_dir / "samples" / "step_0000004.png").is_file()
    return run_dir


def test_checkpoint_keeps_the_pools_and_the_data_record(run_dir):
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert checkpoint["image_pools"]["a"]["images"].shape == (16, 1, 28, 28)  # 4 steps x 4 fakes, below the 50 cap
    assert checkpoint["data"]["_target_"] == "ganlab.data.digits_to_mnist.DigitsToMNISTDataModule"
    grid = Image.open(run_dir / "samples" / "step_0000004.png")
    assert grid.size == (8 * 30 + 2, 6 * 30 + 2)  # 8 a row; source, translated, reconstructed for A and for B


def test_evaluate_scores_translations_from_the_checkpoint_alone(run_dir, tmp_path, capsys):
    results = evaluate(app_config("evaluate", tmp_path, [f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}"]))
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["fid"] == pytest.approx(results["fid_ab"]) and written["global_step"] == 4
    assert written["reference"] == "test splits (360 UCI-Digits images as A, 1000 MNIST images as B)"
    assert 0 <= written["label_preservation_ab"] <= 1 and written["feature_extractor"]["a"]["key"].startswith(
        "uci_digits-"
    )
    printed = capsys.readouterr().out
    assert "label preservation UCI-Digits -> MNIST" in printed and "per source class" in printed
    # Per source class: averaged over the test digits of each class, they give the overall share back.
    uci = UCIDigitsDataModule(root="nowhere", seed=0)
    uci.setup("test")
    support = torch.bincount(uci.test_set.tensors[1], minlength=10).double()
    for name in ("label_preservation_ab", "baseline_label_preservation_ab"):
        per_class = torch.tensor(written[f"{name}_per_class"], dtype=torch.float64)
        assert per_class.shape == (10,) and ((0 <= per_class) & (per_class <= 1)).all()
        assert (per_class * support).sum() / support.sum() == pytest.approx(written[name], abs=1e-6)


def test_sample_draws_rows_of_source_translated_and_reconstructed(run_dir, tmp_path):
    paths = sample(
        app_config(
            "sample", tmp_path, [f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", "num_samples=16", "nrow=8"]
        )
    )
    for path in paths.values():
        assert Image.open(path).size == (8 * 30 + 2, 6 * 30 + 2)  # 2 groups of 3 rows


@pytest.mark.slow  # about 45 s: three two-process runs
def test_ddp_cpu_trains_both_ranks_resumes_exactly_and_the_checkpoint_evaluates(tmp_path):
    def train_ddp(run_dir: Path, *extra: str) -> None:
        args = [
            *SMALL,
            "accelerator=ddp_cpu",
            "trainer.max_steps=4",
            "trainer.deterministic=true",
            "model.pool_size=6",  # full after 2 updates of 4 images per rank: the resumed run draws from its history
            "callbacks.model_checkpoint.every_n_train_steps=2",
            "callbacks.progress_bar=null",
            "trainer.enable_model_summary=false",
            "data.download=false",
            f"hydra.run.dir={run_dir}",
            *extra,
        ]
        result = subprocess.run(
            [sys.executable, str(REPO / "train.py"), *args], cwd=tmp_path, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    run_dir = tmp_path / "run"
    train_ddp(run_dir)
    assert (run_dir / "train_ddp_process_1.log").is_file()
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert checkpoint["global_step"] == 4
    # Each rank's history pools are in the checkpoint, so a resumed DDP run ends on the uninterrupted run's weights.
    halfway = run_dir / "checkpoints" / "step_0000002.ckpt"
    pools = torch.load(halfway, map_location="cpu", weights_only=False)["image_pools"]
    assert pools["a"]["per_rank"].shape[:2] == (2, 6) and not torch.equal(*pools["a"]["per_rank"])
    train_ddp(tmp_path / "resumed", f"ckpt_path={halfway}")
    resumed = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    for name, tensor in checkpoint["state_dict"].items():
        assert torch.equal(tensor, resumed["state_dict"][name]), name
    with open(run_dir / "csv" / "metrics.csv") as f:
        header = f.readline()
    assert "val/label_preservation_ab" in header  # scored across both ranks' shards
    results = evaluate(
        app_config("evaluate", tmp_path / "eval", [f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}"])
    )
    assert np.isfinite(results["fid_ab"])


def test_translator_keeps_the_shape_and_range_and_patchgan_scores_every_patch():
    from ganlab.networks.patchgan import PatchDiscriminator
    from ganlab.networks.resnet_translator import ResnetTranslator

    images = torch.rand(3, 1, 28, 28) * 2 - 1
    translated = ResnetTranslator(base_channels=4, num_blocks=2)(images)
    assert translated.shape == images.shape and translated.abs().max() <= 1
    discriminator = PatchDiscriminator(base_channels=4)
    assert discriminator.patch_logits(images).shape == (3, 1, 6, 6) and discriminator(images).shape == (3 * 36,)
