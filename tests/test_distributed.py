"""Real processes: DDP with 2 CPU ranks on gloo, and Hydra multiruns, each started as a user would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from ganlab.data.sources import BUNDLED_MNIST_SAMPLE

from dump_rank_state import load_rank_states

REPO = Path(__file__).resolve().parents[1]
QUIET = ["callbacks.progress_bar=null", "trainer.enable_model_summary=false", "data.download=false"]


NO_FID = ["++callbacks.fid=null", "++callbacks.best_fid_checkpoint=null", "callbacks.sample_grid=null"]


def with_tests_on_path() -> dict[str, str]:
    """The environment for a subprocess that loads test callbacks (``rank_probe``) by their dotted path."""
    path = os.pathsep.join(p for p in (str(REPO / "tests"), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def run(
    args: list[str],
    cwd: Path,
    script: Path = REPO / "train.py",
    launcher: list[str] | None = None,
    returncode: int = 0,
    timeout: float = 300,
) -> subprocess.CompletedProcess:
    command = [*(launcher or [sys.executable]), str(script), *args]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=with_tests_on_path())
    assert result.returncode == returncode, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.mark.parametrize(
    "objective, d_steps",
    [
        (["loss=wgan_gp", "loss.discriminator_steps=2"], 2),
        # ADA: each rank's overfitting signal is averaged over the ranks, so p moves alike everywhere (a low target:
        # p rises whatever the first updates give on this CPU); LeCam's anchors, from the ranks' mean scores, too
        (
            [
                "loss=hinge",
                "model.augment=[translation,cutout]",
                "model.augment_target=-0.9",
                "model.augment_speed=50",
                "loss.lecam_weight=0.3",
            ],
            1,
        ),
    ],
    ids=["wgan_gp", "hinge_ada_lecam"],
)
def test_ddp_cpu_two_ranks_end_with_identical_weights_in_one_run_dir(tmp_path, objective, d_steps):
    """accelerator=ddp_cpu: 2 real ranks on gloo, one all-reduce per network per update (PerNetworkDDPStrategy),
    weights identical at the end, one run dir."""
    # A train.py with one extra callback that saves each rank's weights after training. Lightning re-launches
    # this same script for rank 1, so both ranks carry it.
    script = tmp_path / "train_and_dump.py"
    script.write_text(
        textwrap.dedent(f"""
        import os, hydra, lightning as L, torch
        from ganlab.train import train
        from omegaconf import open_dict

        class DumpWeights(L.Callback):
            def on_train_start(self, trainer, pl_module):
                self.initial = {{name: p.detach().clone() for name, p in pl_module.named_parameters()}}

            def on_train_end(self, trainer, pl_module):
                state = {{"parameters": dict(pl_module.named_parameters()), "buffers": dict(pl_module.named_buffers()),
                          "initial": self.initial, "noise": pl_module.sample_latent(4), "loss": pl_module.loss.state_dict(),
                          "world_size": trainer.world_size, "rank": trainer.global_rank,
                          "reduced_bytes": trainer.strategy.reduced_bytes, "updates": trainer.global_step}}
                torch.save(state, f"{tmp_path}/rank{{trainer.global_rank}}.pt")

        @hydra.main(version_base="1.3", config_path="{REPO / "conf"}", config_name="train")
        def main(cfg):
            with open_dict(cfg):
                cfg.callbacks.dump = {{"_target_": "__main__.DumpWeights"}}
            train(cfg)
            with open(f"{tmp_path}/process_group_after_rank{{os.environ.get('LOCAL_RANK', '0')}}", "w") as f:
                f.write(str(torch.distributed.is_initialized()))

        main()
    """)
    )
    run_dir = tmp_path / "run"
    run(
        [
            "accelerator=ddp_cpu",
            "model=mlp",
            *objective,
            "trainer.max_steps=3",
            "data.batch_size=8",
            f"data.root={BUNDLED_MNIST_SAMPLE}",
            f"hydra.run.dir={run_dir}",
            *QUIET,
        ],
        cwd=tmp_path,
        script=script,
    )
    # DDP keeps the parameters in sync. (BatchNorm running statistics are not parameters: each rank updates
    # them from its own fakes, and DDP broadcasts rank 0's at the start of every step.)
    state0, state1 = load_rank_states(tmp_path)
    assert (state0["rank"], state1["rank"], state0["world_size"], state1["world_size"]) == (0, 1, 2, 2)
    rank0, rank1 = state0["parameters"], state1["parameters"]
    assert rank0.keys() == rank1.keys() and any("generator" in name for name in rank0)
    for network in ("generator.", "discriminator."):  # equal because synchronized, not because nothing moved
        assert any(
            not torch.equal(rank0[name], state0["initial"][name]) for name in rank0 if name.startswith(network)
        ), network
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
    # Each update all-reduced D's gradients at each of its D steps and G's at G's step, nothing else: one
    # DistributedDataParallel around the whole module sends G's and D's at every backward, (k + 1) (|D| + |G|) an update.
    size = {
        net: sum(p.numel() * p.element_size() for n, p in rank0.items() if n.startswith(net))
        for net in ("generator", "discriminator")
    }
    per_update = d_steps * size["discriminator"] + size["generator"]
    assert state0["updates"] == 3 and state0["reduced_bytes"] == state1["reduced_bytes"] == 3 * per_update
    assert per_update < (d_steps + 1) * (size["discriminator"] + size["generator"]) * 0.7
    if "model.augment_target=-0.9" in objective:  # p moved, and alike on both ranks (before rank 0's broadcast)
        assert state0["buffers"]["discriminator.p"] > 0
        assert torch.equal(state0["buffers"]["discriminator.p"], state1["buffers"]["discriminator.p"])
    if "loss.lecam_weight=0.3" in objective:  # each rank saw its own batch; the anchors are the ranks' mean
        assert len(state0["loss"]["lecam_anchors"]) == 2 and state0["loss"] == state1["loss"]
    # Both ranks destroyed their process group when training ended (left to interpreter exit, gloo can abort).
    assert [(tmp_path / f"process_group_after_rank{rank}").read_text() for rank in (0, 1)] == ["False", "False"]
    # Each rank draws its own noise, so the ranks' fakes are distinct images.
    assert not torch.equal(state0["noise"], state1["noise"])
    # Rank 1 joined rank 0's run dir: one dir, with both processes' logs.
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["run"]
    assert (run_dir / "train_ddp_process_1.log").is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()
    # The checkpoint holds those same synchronized weights.
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    assert all(torch.equal(checkpoint[k], rank0[k]) for k in rank0)


# Under DDP each job is 2 real ranks: two jobs show the sweep's layout (the loss choices run in the cpu case).
@pytest.mark.parametrize(
    "accelerator, losses", [("cpu", "gan,lsgan,hinge"), pytest.param("ddp_cpu", "hinge", marks=pytest.mark.slow)]
)
def test_multirun_makes_one_job_dir_per_combination(tmp_path, accelerator, losses):
    """The sweep covers every model x loss, under DDP too (each job with 2 real ranks), in one sweep dir."""
    sweep_dir = tmp_path / "sweep"
    run(
        [
            "-m",
            "model=mlp,dcgan",
            f"loss={losses}",
            f"accelerator={accelerator}",
            "trainer.max_steps=1",
            "data.batch_size=8",
            f"hydra.sweep.dir={sweep_dir}",
            *QUIET,
        ],
        cwd=tmp_path,
    )
    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    assert len(jobs) == 2 * len(losses.split(","))
    for job in jobs:
        assert list((job / "tensorboard").glob("events.out.tfevents.*")), job
        assert (job / "checkpoints" / "last.ckpt").is_file(), job
    # No stray sweep or run dirs from re-launched DDP ranks.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep"]


def test_torchrun_with_seed_null_gives_every_rank_one_seed_and_disjoint_shards(tmp_path):
    """torchrun starts each rank on its own (no PL_GLOBAL_SEED from a rank 0): the ranks must still agree on the
    seed, hence on the train/val split, and so draw disjoint shards of it."""
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    run_dir = tmp_path / "run"
    run(
        [
            "accelerator=ddp_cpu",
            "model=mlp",
            "seed=null",
            "trainer.max_steps=1",
            "data.batch_size=8",
            "logger=csv",
            f"data.root={BUNDLED_MNIST_SAMPLE}",
            f"hydra.run.dir={run_dir}",
            "+callbacks.probe._target_=rank_probe.DumpSeedAndShard",
            *NO_FID,
            *QUIET,
        ],
        cwd=tmp_path,
        launcher=[torchrun, "--standalone", "--nproc_per_node", "2"],
    )
    rank0, rank1 = torch.load(run_dir / "seed_rank0.pt"), torch.load(run_dir / "seed_rank1.pt")
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert rank0["seed"] == rank1["seed"]
    assert rank0["split"] == rank1["split"]
    assert len(rank0["indices"]) == len(rank1["indices"]) > 0
    assert not set(rank0["indices"].tolist()) & set(rank1["indices"].tolist())


def test_a_non_finite_loss_on_one_rank_stops_every_rank_with_one_message_and_the_last_good_checkpoint(tmp_path):
    """Rank 1 alone gets a NaN loss (finite gradients, so DDP's gradient all-reduce cannot tell rank 0) from step 3:
    the ranks agree on it and both stop, with one error line, instead of rank 1 stopping alone and rank 0 waiting
    for it in the next collective."""
    run_dir = tmp_path / "run"
    result = run(
        [
            "accelerator=ddp_cpu",
            "model=mlp",
            "trainer.max_steps=20",
            "data.batch_size=8",
            "logger=csv",
            "trainer.log_every_n_steps=50",
            "callbacks.model_checkpoint.every_n_train_steps=1",
            "callbacks.divergence_guard.check_every_n_steps=5",
            f"data.root={BUNDLED_MNIST_SAMPLE}",
            f"hydra.run.dir={run_dir}",
            "+callbacks.poison._target_=rank_probe.PoisonRankLoss",
            "+callbacks.poison.step=3",
            *NO_FID,
            *QUIET,
        ],
        cwd=tmp_path,
        returncode=1,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output[
        -3000:
    ]  # before: rank 0 died in its next collective ("Connection closed by peer")
    errors = [line for line in output.splitlines() if "[ERROR]" in line]
    assert len(errors) == 1, output[-3000:]
    # Agreed before step 3's checkpoint was written (the periodic check, every 5 steps, would come later).
    assert "training diverged at step 3: loss/g is nan on a rank of 2" in errors[0], errors[0]
    last = run_dir / "checkpoints" / "last.ckpt"
    assert f"the last good checkpoint is {last}" in errors[0]
    checkpoint = torch.load(last, map_location="cpu", weights_only=False)
    assert checkpoint["global_step"] == 2 and all(torch.isfinite(t).all() for t in checkpoint["state_dict"].values())


def test_a_non_finite_loss_at_a_check_step_is_agreed_at_that_step(tmp_path):
    """At a step where both check, ``checkpoint_on_signal`` (listed first) asked for the ranks' agreement before
    the guard had recorded that step's losses, and the guard then cleared them unseen: a NaN on one rank at such
    a step was never agreed on, and the run ended as if nothing happened."""
    run_dir = tmp_path / "run"
    result = run(
        [
            "accelerator=ddp_cpu",
            "model=mlp",
            "trainer.max_steps=6",
            "data.batch_size=8",
            "logger=csv",
            "callbacks.divergence_guard.check_every_n_steps=5",
            "callbacks.checkpoint_on_signal.check_every_n_steps=5",  # both ask at step 5 (by default: 10, 20, ...)
            f"data.root={BUNDLED_MNIST_SAMPLE}",
            f"hydra.run.dir={run_dir}",
            "+callbacks.poison._target_=rank_probe.PoisonRankLoss",
            "+callbacks.poison.step=5",
            "+callbacks.poison.steps=1",
            *NO_FID,
            *QUIET,
        ],
        cwd=tmp_path,
        returncode=1,
        timeout=120,
    )
    errors = [line for line in (result.stdout + result.stderr).splitlines() if "[ERROR]" in line]
    assert len(errors) == 1 and "training diverged at step 5: loss/g is nan on a rank of 2" in errors[0], errors


def test_rank_states_saved_on_gpus_load_on_any_machine(tmp_path, monkeypatch):
    """Rank N of a GPU run saves its tensors on cuda:N; loaded as saved, two ranks' tensors sit on two devices
    (torch.equal raises), and on a machine without CUDA they do not load at all."""
    monkeypatch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:1")  # as rank 1 tags them
    for rank in range(2):
        torch.save({"parameters": {"w": torch.arange(3.0)}}, tmp_path / f"rank{rank}.pt")
    monkeypatch.undo()
    rank0, rank1 = load_rank_states(tmp_path)
    assert torch.equal(rank0["parameters"]["w"], rank1["parameters"]["w"])


def test_fid_callback_logs_the_same_kid_and_classifier_score_on_every_rank(tmp_path):
    """Each rank scores its slice of the same latents; KID's subsets and the classifier score's splits are drawn
    alike on every rank, and KID's subset size comes from the global counts, so all ranks log the same values."""
    run_dir = tmp_path / "run"
    run(
        [
            "accelerator=ddp_cpu",
            "model=mlp",
            "trainer.max_steps=2",
            "trainer.limit_train_batches=1",
            "trainer.limit_val_batches=1",
            "data.batch_size=8",
            "logger=csv",
            "callbacks.fid.num_samples=200",
            "metrics.kid_subset_size=150",
            "callbacks.sample_grid=null",
            f"data.root={BUNDLED_MNIST_SAMPLE}",
            f"hydra.run.dir={run_dir}",
            "+callbacks.metrics._target_=rank_probe.LogMetrics",
            *QUIET,
        ],
        cwd=tmp_path,
    )
    rank0, rank1 = torch.load(run_dir / "metrics_rank0.pt"), torch.load(run_dir / "metrics_rank1.pt")
    assert {"val/fid", "val/kid", "val/classifier_score"} <= rank0.keys()
    for name in ("val/fid", "val/kid", "val/classifier_score", "val/coverage_kl"):
        assert rank0[name] == rank1[name], (name, rank0[name], rank1[name])
