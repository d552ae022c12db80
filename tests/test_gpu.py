"""GPU paths: what can be checked on the CPU (the data-dependent init's device) always; the rest where CUDA is
present, skipped cleanly elsewhere.

How updates are counted. Lightning moves the model back to the CPU when ``fit`` ends, so a parameter's device
says nothing about where training ran: the device is read from ``trainer.strategy.root_device``. Updates are
read from Adam's per-parameter ``step`` state (the max over an optimizer's parameters), which counts the steps
the optimizer really took: ``max_steps`` for G and ``max_steps * k`` for D. With ``16-mixed`` the grad scaler
skips a step whose scaled gradients overflowed (and halves its scale): a legitimate skip, so there the counts
may fall short, by exactly the number of halvings of the scale (one scaler serves both optimizers; it grows
again only after 2,000 clean steps, far more than these runs take). ``bf16-mixed`` has no scaler: exact counts.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import open_dict

from ganlab.data.sources import BUNDLED_MNIST_SAMPLE
from ganlab.train import train

from dump_rank_state import load_rank_states
from families import FAMILIES, adam_steps

REPO = Path(__file__).resolve().parents[1]
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
needs_two_gpus = pytest.mark.skipif(torch.cuda.device_count() < 2, reason="DDP on GPUs needs 2 CUDA GPUs")
NO_FID = ["++callbacks.fid=null", "++callbacks.best_fid_checkpoint=null"]

# Every family, small: (overrides, discriminator updates per generator update); dcgan with WGAN-GP and 2 critic
# updates: the penalty's inner gradient under autocast, and k > 1 counted.
MODELS = {name: (family.overrides(), 1) for name, family in FAMILIES.items()} | {
    "dcgan": (FAMILIES["dcgan"].overrides("loss=wgan_gp", "loss.discriminator_steps=2"), 2)
}
PRECISIONS = ["32-true", "16-mixed", "bf16-mixed"]


# ---- without a GPU -------------------------------------------------------------------------------------
def test_data_dependent_init_places_its_batch_by_the_weights_not_by_self_device(make_cfg):
    """In ``setup`` Lightning already reports the target device (``cuda:N``) while the weights are still on the
    CPU. A module that reports another device than its weights' must still initialize from data, on the device
    of the weights: the batch placed by ``self.device`` would meet weights elsewhere and fail."""
    cfg = make_cfg(["experiment=sgan", *MODELS["sgan"][0][1:], "logger=csv"])
    model = instantiate(cfg.model, loss=cfg.loss, optimizer=cfg.optimizer, _recursive_=False, _convert_="all")
    datamodule = instantiate(cfg.data, discriminator_steps=model.discriminator_steps)
    datamodule.setup("fit")
    model._device = torch.device("meta")  # what `self.device` says; every weight is on the CPU
    model.trainer = SimpleNamespace(datamodule=datamodule)
    assert model.device.type == "meta" and next(model.parameters()).device.type == "cpu"
    before = {name: p.detach().clone() for name, p in model.discriminator.named_parameters()}
    model.setup("fit")
    after = dict(model.discriminator.named_parameters())
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    assert any("scale" in name for name in changed), changed  # the init ran: the scales follow the data
    assert all(p.device.type == "cpu" and torch.isfinite(p).all() for p in after.values())


# ---- one GPU --------------------------------------------------------------------------------------------
@needs_gpu
@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("model", list(MODELS))
def test_one_gpu_trains_every_model_in_every_precision_counting_g_and_d_updates(make_cfg, model, precision):
    if precision == "bf16-mixed" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bfloat16")
    overrides, k = MODELS[model]
    max_steps = 6
    cfg = make_cfg(
        [
            "accelerator=gpu",
            f"trainer.precision={precision}",
            f"trainer.max_steps={max_steps}",
            "data.batch_size=8",
            "logger=csv",
            "test=false",
            *NO_FID,
            *overrides,
        ]
    )
    result = train(cfg)
    trainer = result["trainer"]
    assert trainer.strategy.root_device.type == "cuda"  # where it trained (fit ends with the model back on the CPU)
    assert trainer.global_step == max_steps  # generator updates
    optimizers = dict(zip(result["model"].parameter_groups(), trainer.optimizers))  # by name: InfoGAN has a third
    d_steps, g_steps = adam_steps(optimizers["discriminator"]), adam_steps(optimizers["generator"])
    scaler = getattr(trainer.precision_plugin, "scaler", None)
    if scaler is None:  # 32-true, bf16-mixed: every update applied
        assert (d_steps, g_steps) == (max_steps * k, max_steps)
    else:  # 16-mixed: the scaler's skips, and only they, are missing
        halvings = round(math.log2(scaler._init_scale / scaler.get_scale()))
        assert (max_steps * k - d_steps) + (max_steps - g_steps) == halvings, (d_steps, g_steps, halvings)
        assert g_steps > 0 and d_steps > 0
    assert all(torch.isfinite(p).all() for p in result["model"].parameters())


@needs_gpu
def test_ema_and_the_fid_callback_run_on_the_gpu(make_cfg):
    overrides, _ = MODELS["dcgan"]
    cfg = make_cfg(
        [
            "accelerator=gpu",
            "trainer.max_steps=4",
            "trainer.limit_train_batches=2",
            "data.batch_size=8",
            "logger=csv",
            "callbacks=[default,ema]",
            "callbacks.fid.num_samples=200",
            "metrics.kid_subset_size=100",
            *overrides,
        ]
    )
    result = train(cfg)
    trainer = result["trainer"]
    assert trainer.strategy.root_device.type == "cuda"
    assert all(math.isfinite(result["metrics"][name]) for name in ("val/fid", "val/kid", "val/classifier_score"))
    fid = next(cb for cb in trainer.callbacks if type(cb).__name__ == "FIDCallback")
    scores = fid.evaluator.validation_scores  # the feature network and metric states the callback built
    assert any(t.is_cuda for t in [*scores.parameters(), *scores.buffers()])


class TrainingDataDevice(L.Callback):
    """Where the training loader's dataset lives and where its index batches are made."""

    def on_train_start(self, trainer, pl_module):
        loader = trainer.train_dataloader
        self.dataset_device, self.index_device = loader.dataset.tensors[0].device, loader.sampler.device


@needs_gpu
@pytest.mark.parametrize("on_device", [True, False])
def test_the_training_split_is_resident_on_the_gpu_and_batches_are_gathered_there(make_cfg, on_device):
    cfg = make_cfg(["accelerator=gpu", "trainer.max_steps=3", "logger=csv", *NO_FID, f"data.on_device={on_device}"])
    with open_dict(cfg), open_dict(cfg.callbacks):
        cfg.callbacks.where = {"_target_": f"{__name__}.TrainingDataDevice"}
    result = train(cfg)
    where = next(cb for cb in result["trainer"].callbacks if isinstance(cb, TrainingDataDevice))
    expected = "cuda" if on_device else "cpu"
    assert where.dataset_device.type == where.index_device.type == expected


# ---- DDP on GPUs ------------------------------------------------------------------------------------------
@needs_two_gpus
@pytest.mark.parametrize(
    "model", [["model=mlp"], ["model=dcgan", "model.generator.base_channels=8", "model.discriminator.base_channels=8"]]
)
def test_ddp_on_two_gpus_trains_with_ranks_in_step(tmp_path, model):
    """accelerator=ddp: the per-network strategy, and sync_batchnorm (G's BatchNorm in model=dcgan) without a
    DDP wrapper."""
    run_dir = tmp_path / "run"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO / "tests"), os.environ.get("PYTHONPATH")) if p),
    }
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "train.py"),
            "accelerator=ddp",
            "trainer.devices=2",
            *model,
            "trainer.max_steps=4",
            "data.batch_size=8",
            "logger=csv",
            f"data.root={BUNDLED_MNIST_SAMPLE}",
            f"hydra.run.dir={run_dir}",
            *NO_FID,
            "callbacks.progress_bar=null",
            "data.download=false",
            "+callbacks.dump._target_=dump_rank_state.DumpRankState",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rank0, rank1 = load_rank_states(run_dir)
    for name, value in rank0["parameters"].items():
        assert torch.equal(value, rank1["parameters"][name]), name
    for name, value in rank0["buffers"].items():
        assert torch.equal(value, rank1["buffers"][name]), name
    assert rank0["sync_batchnorm"] == (model[0] == "model=dcgan")
