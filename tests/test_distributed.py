"""Real processes: DDP with 2 CPU ranks on gloo, and Hydra multiruns, each started as a user would."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from ganlab.data.sources import BUNDLED_MNIST_SAMPLE

REPO = Path(__file__).resolve().parents[1]
QUIET = ["callbacks.progress_bar=null", "trainer.enable_model_summary=false", "data.download=false"]


def run(args: list[str], cwd: Path, script: Path = REPO / "train.py") -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, str(script), *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_ddp_cpu_two_ranks_end_with_identical_weights_in_one_run_dir(tmp_path):
    # A train.py with one extra callback that saves each rank's weights after training. Lightning re-launches
    # this same script for rank 1, so both ranks carry it.
    script = tmp_path / "train_and_dump.py"
    script.write_text(textwrap.dedent(f"""
        import hydra, lightning as L, torch
        from ganlab.train import train
        from omegaconf import open_dict

        class DumpWeights(L.Callback):
            def on_train_start(self, trainer, pl_module):
                self.initial = {{name: p.detach().clone() for name, p in pl_module.named_parameters()}}

            def on_train_end(self, trainer, pl_module):
                state = {{"parameters": dict(pl_module.named_parameters()), "initial": self.initial, "noise": pl_module.sample_latent(4),
                          "world_size": trainer.world_size, "rank": trainer.global_rank}}
                torch.save(state, f"{tmp_path}/rank{{trainer.global_rank}}.pt")

        @hydra.main(version_base="1.3", config_path="{REPO / 'conf'}", config_name="train")
        def main(cfg):
            with open_dict(cfg):
                cfg.callbacks.dump = {{"_target_": "__main__.DumpWeights"}}
            train(cfg)

        main()
    """))
    run_dir = tmp_path / "run"
    run(["accelerator=ddp_cpu", "model=mlp", "loss=wgan_gp", "loss.discriminator_steps=2", "trainer.max_steps=3",
         "data.batch_size=8", f"data.root={BUNDLED_MNIST_SAMPLE}", f"hydra.run.dir={run_dir}", *QUIET], cwd=tmp_path, script=script)
    # DDP keeps the parameters in sync. (BatchNorm running statistics are not parameters: each rank updates
    # them from its own fakes, and DDP broadcasts rank 0's at the start of every step.)
    state0, state1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert (state0["rank"], state1["rank"], state0["world_size"], state1["world_size"]) == (0, 1, 2, 2)
    rank0, rank1 = state0["parameters"], state1["parameters"]
    assert rank0.keys() == rank1.keys() and any("generator" in name for name in rank0)
    for network in ("generator.", "discriminator."):  # equal because synchronized, not because nothing moved
        assert any(not torch.equal(rank0[name], state0["initial"][name]) for name in rank0 if name.startswith(network)), network
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
    # Each rank draws its own noise, so the ranks' fakes are distinct images.
    assert not torch.equal(state0["noise"], state1["noise"])
    # Rank 1 joined rank 0's run dir: one dir, with both processes' logs.
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["run"]
    assert (run_dir / "train_ddp_process_1.log").is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()
    # The checkpoint holds those same synchronized weights.
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    assert all(torch.equal(checkpoint[k], rank0[k]) for k in rank0)


@pytest.mark.parametrize("accelerator, losses", [("cpu", "gan,lsgan"), ("ddp_cpu", "gan,nsgan,lsgan,wgan_gp,hinge")])
def test_multirun_makes_one_job_dir_per_combination(tmp_path, accelerator, losses):
    """The sweep under DDP covers every model x loss: each trains with 2 real ranks."""
    sweep_dir = tmp_path / "sweep"
    run(["-m", "model=mlp,dcgan", f"loss={losses}", f"accelerator={accelerator}", "trainer.max_steps=1", "data.batch_size=8",
         f"hydra.sweep.dir={sweep_dir}", *QUIET], cwd=tmp_path)
    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    assert len(jobs) == 2 * len(losses.split(","))
    for job in jobs:
        assert list((job / "tensorboard").glob("events.out.tfevents.*")), job
        assert (job / "checkpoints" / "last.ckpt").is_file(), job
    # No stray sweep or run dirs from re-launched DDP ranks.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep"]
