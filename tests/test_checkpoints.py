"""Checkpoints from the user's side: saved before the layout move and still loading; carrying their data record."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganlab.checkpoints import MOVED
from ganlab.evaluate import evaluate
from ganlab.models.acgan import ACGAN
from ganlab.models.cgan import ConditionalGAN
from ganlab.models.gan import GAN
from ganlab.models.sgan import SemiSupervisedGAN
from ganlab.train import train

from conftest import app_config

FIXTURES = Path(__file__).parent / "fixtures"
# Saved by the code before the move (tests/fixtures/README.md), with the class each must come back as.
PRE_LAYOUT = {"mlp": GAN, "cgan": ConditionalGAN, "acgan": ACGAN, "sgan": SemiSupervisedGAN, "began": GAN}


@pytest.mark.parametrize("name", PRE_LAYOUT)
def test_checkpoint_saved_before_the_layout_move_loads_whole(name):
    path = FIXTURES / f"pre_layout_{name}.ckpt"
    saved = torch.load(path, map_location="cpu", weights_only=False)
    assert saved["gan_class"] in MOVED  # really an old path: the test loads through the alias table
    gan = GAN.load_from_checkpoint(path, map_location="cpu")
    assert type(gan) is PRE_LAYOUT[name]
    assert gan.state_dict().keys() == saved["state_dict"].keys()
    for key, tensor in saved["state_dict"].items():
        assert torch.equal(gan.state_dict()[key], tensor), key
    images = gan.generate(6)
    assert images.shape == (6, 1, 28, 28) and images.min() >= -1 and images.std() > 0  # SGAN's softplus has no ceiling


def test_checkpoint_records_its_data_without_the_fid_callback(make_cfg, tmp_path):
    """evaluate.py rebuilds the data from the checkpoint alone, whichever callbacks the run had."""
    train(
        make_cfg(
            [
                "model=mlp",
                "trainer.max_steps=2",
                "callbacks.fid=null",
                "callbacks.best_fid_checkpoint=null",
                "logger=csv",
            ]
        )
    )
    last = tmp_path / "checkpoints" / "last.ckpt"
    record = torch.load(last, map_location="cpu", weights_only=False)["data"]
    assert record["_target_"] == "ganlab.data.mnist.MNISTDataModule" and record["num_classes"] == 10
    results = evaluate(app_config("evaluate", tmp_path / "eval", [f"ckpt_path={last}", "num_samples=50"]))
    assert results["dataset"] == "MNIST" and results["global_step"] == 2
