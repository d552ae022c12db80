"""StackGAN (experiment=stackgan, experiment=stackgan_fashion): every network trains, on one and two ranks; the
matching-aware loss has its mismatched-caption term; TensorBoard gets the captions beside the grids; evaluate.py
and sample.py work from the checkpoint alone, and a bad caption is one line naming the vocabulary. Exact resume
is in test_resume.py (MODELS), the captions in test_captions.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganlab.data.batches import CaptionedBatch
from ganlab.data.captions import CaptionError, unpack
from ganlab.evaluate import evaluate
from ganlab.models.gan import GAN
from ganlab.models.stackgan import StackGAN
from ganlab.sample import sample
from ganlab.train import train

from conftest import app_config, compose_config
from families import FAMILIES
from recorders import InitialWeights, find

REPO = Path(__file__).resolve().parents[1]
NETWORKS = (
    "text_encoder.",
    "caption_head.",
    "generator.augment_1.",
    "generator.stage_1.",
    "generator.augment_2.",
    "generator.stage_2.",
    "discriminator_1.",
    "discriminator_2.",
)
# The family's small networks, 8 images a step, a validation every 4 steps with FID of 64 samples.
SMALL = FAMILIES["stackgan"].overrides("trainer.val_check_interval=4", "callbacks.fid.num_samples=64")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """4 steps that validate once, with an EMA of the weights and both loggers."""
    run_dir = tmp_path_factory.mktemp("stackgan")
    result = train(
        compose_config(
            run_dir,
            [
                *SMALL,
                "logger=[csv,tensorboard]",
                "callbacks=[default,ema]",
                "callbacks.ema.decay=0.5",
                "+callbacks.initial._target_=recorders.InitialWeights",
            ],
        )
    )
    gan, metrics = result["model"], result["metrics"]
    assert isinstance(gan, StackGAN) and result["trainer"].global_step == 4
    for name in ["loss/d1_mismatch", "loss/d2_mismatch", "loss/kl", "loss/g_attributes", "val/fid", "val/D(x)"]:
        assert np.isfinite(metrics[name]), name
    initial = find(result["trainer"], InitialWeights)
    for prefix in NETWORKS:
        assert initial.moved(gan, prefix), f"{prefix} did not move"
    return run_dir


def test_wgan_clips_only_the_discriminators_not_the_caption_encoder(make_cfg):
    loss = "wgan"
    cfg = make_cfg(
        [
            *SMALL,
            f"loss={loss}",
            "trainer.max_steps=2",
            "callbacks.fid=null",
            "callbacks.best_fid_checkpoint=null",
            "logger=csv",
            "+callbacks.initial._target_=recorders.InitialWeights",
        ]
    )
    result = train(cfg)
    gan = result["model"]
    for name in ["loss/d", "loss/g", "loss/d2_mismatch", "loss/kl"]:
        assert torch.isfinite(torch.tensor(result["metrics"][name])), name
    initial = find(result["trainer"], InitialWeights)
    for prefix in NETWORKS:
        assert initial.moved(gan, prefix), f"{prefix} did not move"
    if loss == "wgan":  # weights clipped to +-0.01 in both discriminators; the caption encoder keeps its scale
        assert max(p.abs().max() for p in gan.discriminator_2.parameters()) <= gan.loss.clip_value
        assert max(p.abs().max() for p in gan.text_encoder.parameters()) > 10 * gan.loss.clip_value


def test_grid_shows_stage_one_then_stage_two_per_caption_and_tensorboard_gets_the_captions(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    grid = Image.open(run_dir / "samples" / "step_0000004.png")
    assert grid.size == (8 * 30 + 2, 10 * 30 + 2)  # 10 captions; 4 stage-I then 4 stage-II images a row
    events = EventAccumulator(str(next((run_dir / "tensorboard").rglob("events.*")).parent))
    events.Reload()
    assert "samples" in events.Tags()["images"]
    text = events.Tensors("samples/captions/text_summary")[-1].tensor_proto.string_val[0].decode()
    assert "stage I" in text and "0. " in text and "9. " in text


def test_checkpoint_keeps_the_vocabulary_and_the_captioned_data(run_dir):
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert checkpoint["hyper_parameters"]["vocabulary"][:3] == ["<pad>", "0", "1"]
    assert checkpoint["data"]["_target_"] == "ganlab.data.captioned_digits.CaptionedDataModule"
    assert checkpoint["data"]["held_out"] == ["thick 1", "left 7"]


def test_discriminator_loss_has_the_mismatched_caption_term(run_dir):
    gan = GAN.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt", map_location="cpu")
    packed = gan.fixed_captions[:4]
    real = torch.rand(4, 1, 28, 28) * 2 - 1
    calls = []
    d_loss = gan.loss.d_loss
    gan.loss.d_loss = lambda real_scores, fake_scores: (
        calls.append((real_scores, fake_scores)) or d_loss(real_scores, fake_scores)
    )
    torch.manual_seed(0)
    total, _, _, terms = gan.discriminator_loss(CaptionedBatch(real, packed))
    assert len(calls) == 4  # per stage: (real, fake), then (real, real with a mismatched caption)
    text = gan.encode(packed)
    with torch.no_grad():
        mismatched = gan.discriminator_2(real, text.roll(1, dims=0))[0]
        matched = gan.discriminator_2(real, text)[0]
    assert torch.allclose(calls[3][1], mismatched, atol=1e-5) and torch.allclose(calls[3][0], matched, atol=1e-5)
    assert not torch.allclose(mismatched, matched)
    expected = 0.5 * sum(terms[f"loss/d{s}_fake"] + terms[f"loss/d{s}_mismatch"] for s in (1, 2))
    assert torch.allclose(terms["loss/d"], expected)
    attributes = sum(terms[f"loss/d{s}_attributes"] for s in (1, 2))
    assert torch.allclose(total, expected + attributes + terms["loss/caption_attributes"])


def test_mode_seeking_term_is_off_at_0_and_grows_when_g_ignores_the_noise(run_dir):
    """model.mode_seeking_weight (MSGAN): a second noise draw for the batch's captions; the term is the inverse
    of how far apart the two draws' images are per unit of noise, so a G that ignores z pays the most."""
    gan = GAN.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt", map_location="cpu")
    assert gan.hparams.mode_seeking_weight == 0.2  # the preset's (docs/stackgan.md)
    batch = CaptionedBatch(torch.rand(8, 1, 28, 28) * 2 - 1, gan.fixed_captions[:8])
    gan.hparams.mode_seeking_weight = 0.0
    torch.manual_seed(0)
    total, terms = gan.generator_loss(batch)
    assert "loss/mode_seeking" not in terms  # off: no second draw
    gan.hparams.mode_seeking_weight = 0.5
    torch.manual_seed(0)
    weighted, terms = gan.generator_loss(batch)
    assert torch.allclose(weighted, total + 0.5 * terms["loss/mode_seeking"])  # the same first draw, plus the term
    stage_1 = gan.generator.stage_1.seed[0].weight  # Linear over [z, condition]
    (grad,) = torch.autograd.grad(terms["loss/mode_seeking"], stage_1)
    assert grad[:, : gan.hparams.latent_dim].abs().sum() > 0  # it reaches G through the noise's weights
    with torch.no_grad():
        stage_1[:, : gan.hparams.latent_dim] = 0  # G now ignores z,
        for augmentation in (gan.generator.augment_1, gan.generator.augment_2):  # and sigma is 0: c = mu
            augmentation.fc.bias[augmentation.fc.out_features // 2 :] = -1000
    torch.manual_seed(0)
    _, ignoring = gan.generator_loss(batch)
    assert ignoring["loss/mode_seeking"] > 1000 * terms["loss/mode_seeking"]  # both draws give the same images


def test_evaluate_scores_captions_from_the_checkpoint_alone(run_dir, tmp_path, capsys):
    results = evaluate(
        app_config("evaluate", tmp_path, [f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", "num_samples=64"])
    )
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["fid"] == pytest.approx(results["fid"]) and written["global_step"] == 4
    assert np.isfinite(written["fid_stage_1_upsampled"]) and 0 <= written["captions"]["class_accuracy"] <= 1
    assert written["chance"]["thickness_agreement"] == pytest.approx(1 / 3)
    assert written["held_out"]["pairs"] == ["thick 1", "left 7"] and written["held_out"]["images"] == 100
    assert written["retrieval"]["candidates"] == 32 and written["retrieval"]["images"] == 64
    out = capsys.readouterr().out
    assert all(0 <= written[key] for key in ("precision", "recall", "density", "coverage", "recall_stage_1_upsampled"))
    assert "caption class accuracy" in out and "stage I upsampled" in out and "retrieval" in out
    assert "precision / recall" in out and "density / coverage" in out


def test_sample_draws_a_caption_and_rejects_unknown_words_naming_the_vocabulary(run_dir, tmp_path):
    ckpt = f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}"
    paths = sample(app_config("sample", tmp_path, [ckpt, "caption=a thick 7 slanted to the right", "num_samples=16"]))
    assert Image.open(paths["caption"]).size == (8 * 30 + 2, 4 * 30 + 2)  # 2 pairs of rows: stage I over stage II
    assert (tmp_path / "caption.txt").read_text() == "a thick 7 slanted to the right\n"
    paths = sample(app_config("sample", tmp_path / "default", [ckpt]))
    assert len((tmp_path / "default" / "captions.txt").read_text().splitlines()) == 16  # 64 images, 4 a caption
    for caption, message in [("a purple 7", "unknown word 'purple'"), ("''", "the caption is empty")]:
        with pytest.raises(CaptionError, match=message):
            sample(app_config("sample", tmp_path / "bad", [ckpt, f"caption={caption}"]))
    result = subprocess.run(
        [sys.executable, str(REPO / "sample.py"), ckpt, "caption=a purple 7", f"hydra.run.dir={tmp_path / 'cli'}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "unknown word 'purple'" in line and "the vocabulary: 0 1 2 3" in line


def test_generated_images_follow_the_caption_encoding(run_dir):
    """What G takes: the same noise and two captions give two images; the same caption twice, the same image."""
    gan = GAN.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt", map_location="cpu")
    z = gan.sample_latent(2)
    two = gan.fixed_captions[:2]
    stage_1, stage_2 = gan.generate_stages(z, two)
    assert stage_1.shape == (2, 1, 14, 14) and stage_2.shape == (2, 1, 28, 28) and stage_2.abs().max() <= 1
    # in eval mode the conditioning augmentation still samples: fix the RNG to compare
    torch.manual_seed(1)
    a = gan.generate(z=z[:1].expand(2, -1), captions=two)
    torch.manual_seed(1)
    b = gan.generate(z=z[:1].expand(2, -1), captions=two[:1].expand(2, -1))
    # equal up to float rounding: the GRU packs captions by length, so row 0's sums run in another order when
    # the other caption's length changes (a difference of about 1e-7 on some CPUs); another caption moves it far more
    assert torch.allclose(a[0], b[0], atol=1e-5) and (a[1] - b[1]).abs().max() > 1e-3
    assert unpack(two).lengths.min() > 0


def test_fashion_preset_trains_on_captioned_fashion_mnist(make_cfg):
    if not Path("/usr/share/datasets/fashion-mnist").is_dir():
        pytest.skip("Fashion-MNIST is not installed (Debian's dataset-fashion-mnist)")
    cfg = make_cfg(
        [
            *(o for o in SMALL if o != "experiment=stackgan"),
            "experiment=stackgan_fashion",
            "trainer.max_steps=2",
            "callbacks.fid=null",
            "callbacks.best_fid_checkpoint=null",
            "logger=csv",
        ]
    )
    assert cfg.model.caption_classes == "fashion_mnist"
    result = train(cfg)
    assert result["trainer"].global_step == 2 and "handbag" in result["model"].grammar.vocabulary


def test_ddp_cpu_trains_both_ranks_and_the_checkpoint_evaluates(tmp_path):
    run_dir = tmp_path / "run"
    args = [
        *SMALL,
        "accelerator=ddp_cpu",
        "callbacks.progress_bar=null",
        "trainer.enable_model_summary=false",
        "trainer.max_steps=4",
        "trainer.log_every_n_steps=1",
        "data.download=false",
        "logger=csv",
        f"hydra.run.dir={run_dir}",
    ]
    result = subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (run_dir / "train_ddp_process_1.log").is_file()
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert checkpoint["global_step"] == 4
    with open(run_dir / "csv" / "metrics.csv") as f:
        header = f.readline()
    assert "val/fid" in header and "loss/d2_mismatch" in header and "val/D_mismatched(x)" in header
    results = evaluate(
        app_config(
            "evaluate", tmp_path / "eval", [f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", "num_samples=64"]
        )
    )
    assert np.isfinite(results["fid"]) and np.isfinite(results["fid_stage_1_upsampled"])
