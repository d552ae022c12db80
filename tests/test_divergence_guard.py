"""The divergence guard on real training: a NaN injected into a real batch, a learning rate large enough to
overflow float32."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from omegaconf import open_dict

from ganlab.callbacks.divergence_guard import DivergenceError, DivergenceGuard
from ganlab.train import train

from recorders import find

REPO = Path(__file__).resolve().parents[1]
NO_FID = ["++callbacks.fid=null", "++callbacks.best_fid_checkpoint=null", "callbacks.sample_grid=null"]


class PoisonBatch(L.Callback):
    """Test fault injection: one NaN pixel in the real images of generator update ``step`` (1-based)."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step + 1 == self.step:
            batch[0][0, 0, 0, 0] = math.nan  # images are (B, C, H, W) floats by now


def with_poison(cfg, step: int):
    with open_dict(cfg.callbacks):
        cfg.callbacks.poison = {"_target_": f"{__name__}.PoisonBatch", "step": step}
    return cfg


def test_nan_stops_the_run_naming_step_and_quantity_and_keeps_the_last_good_checkpoint(make_cfg, tmp_path):
    cfg = with_poison(
        make_cfg(["model=mlp", "trainer.max_steps=8", "callbacks.model_checkpoint.every_n_train_steps=2", *NO_FID]),
        step=5,
    )
    with pytest.raises(DivergenceError) as error:
        train(cfg)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("training diverged at step 5: gradient of discriminator.") and "is nan" in message
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert f"the last good checkpoint is {last}" in message
    checkpoint = torch.load(last, map_location="cpu", weights_only=False)
    assert checkpoint["global_step"] == 4
    assert all(torch.isfinite(tensor).all() for tensor in checkpoint["state_dict"].values())
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "last.ckpt",
        "step_0000002.ckpt",
        "step_0000004.ckpt",
    ]


def test_skip_drops_the_bad_update_and_training_goes_on(make_cfg):
    cfg = with_poison(
        make_cfg(["model=mlp", "trainer.max_steps=6", "callbacks.divergence_guard.action=skip", *NO_FID]), step=3
    )
    result = train(cfg)
    assert result["trainer"].global_step == 6
    assert find(result["trainer"], DivergenceGuard).skipped == 1  # D's update of step 3; G never saw the NaN
    assert all(torch.isfinite(p).all() for p in result["model"].parameters())


def test_overflowing_learning_rate_exits_nonzero_with_one_line(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "train.py"),
            "model=mlp",
            "optimizer.discriminator.lr=1e30",
            "trainer.max_steps=20",
            "data.download=false",
            "data.batch_size=16",
            "callbacks.progress_bar=null",
            f"hydra.run.dir={tmp_path / 'run'}",
            *NO_FID,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    errors = [line for line in output.splitlines() if "[ERROR]" in line]
    assert len(errors) == 1 and "training diverged at step 1: " in errors[0], output[-3000:]
    assert "is inf" in errors[0] or "is nan" in errors[0]
    assert "Traceback" not in output
