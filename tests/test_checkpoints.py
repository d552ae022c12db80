"""Checkpoints from the user's side: saved before the layout move and still loading; carrying their data record."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from ganlab.evaluate import evaluate
from ganlab.models.acgan import ACGAN
from ganlab.models.cgan import ConditionalGAN
from ganlab.models.gan import GAN
from ganlab.models.sgan import SemiSupervisedGAN
from ganlab.run.checkpoints import MOVED
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


# Saved by the code before a family became one object (tests/fixtures/README.md), with the overrides they were
# trained with (a resume needs the same model config).
TINY = ["model.generator.base_channels=4", "model.discriminator.base_channels=4"]
PRE_FAMILY = {
    "dcgan": ["model=dcgan", "model.latent_dim=8", *TINY],
    # the preset as it was then: the two-conv D without spectral norm (the preset now takes the default recipe's D)
    "acgan": [
        "experiment=acgan",
        "model.latent_dim=8",
        *TINY,
        *("model.discriminator.deep=false", "model.discriminator.spectral_norm=false", "loss=nsgan", "optimizer=adam"),
    ],
    "cyclegan": ["experiment=cyclegan", *TINY, "model.lr_decay_start=1", "model.pool_size=4"],
    "stackgan": [
        "experiment=stackgan",
        "model.latent_dim=8",
        *TINY,
        "model.text_encoder.text_dim=8",
        "model.text_encoder.embedding_dim=4",
        "model.text_encoder.hidden_dim=4",
        "model.discriminator.embed_dim=4",
        "model.generator.num_blocks=1",
    ],
}


@pytest.mark.parametrize("name", PRE_FAMILY)
def test_checkpoint_saved_before_families_became_objects_loads_draws_and_resumes(name, make_cfg, tmp_path):
    path = FIXTURES / f"pre_family_{name}.ckpt"
    saved = torch.load(path, map_location="cpu", weights_only=False)
    gan = GAN.load_from_checkpoint(path, map_location="cpu")
    for key, tensor in saved["state_dict"].items():
        assert torch.equal(gan.state_dict()[key], tensor), key
    datamodule = instantiate(saved["data"] | {"download": False} if "root" in saved["data"] else saved["data"])
    datamodule.setup("fit")
    grid = gan.evaluator().sample_grid(datamodule)
    assert grid.images.dim() == 4 and grid.images.std() > 0
    cfg = make_cfg([*PRE_FAMILY[name], "data.batch_size=8", "trainer.max_steps=3", f"ckpt_path={path}"])
    result = train(cfg)
    assert result["trainer"].global_step == 3  # resumed at 2, one more update


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
