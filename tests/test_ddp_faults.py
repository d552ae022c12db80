"""DDP faults: a rank that dies or stops answering fails the job with one line naming it,
instead of a hang or a silent SIGKILL; a sweep's ranks are reaped at the end of their job."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from ganlab.data.sources import BUNDLED_MNIST_SAMPLE

REPO = Path(__file__).resolve().parents[1]
ARGS = [
    "accelerator=ddp_cpu",
    "model=mlp",
    "data.batch_size=8",
    f"data.root={BUNDLED_MNIST_SAMPLE}",
    "callbacks.progress_bar=null",
    "trainer.enable_model_summary=false",
    "data.download=false",
    "logger=csv",
    "++callbacks.fid=null",
    "++callbacks.best_fid_checkpoint=null",
    "callbacks.sample_grid=null",
    "trainer.limit_val_batches=1",
]


def _errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if "DDP: " in line or "Traceback" in line]


def test_a_killed_rank_fails_the_run_in_one_line_naming_it(tmp_path):
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "train.py"),
            *ARGS,
            "trainer.max_steps=100000",
            "callbacks.model_checkpoint.every_n_train_steps=1",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    beat = run_dir / ".ranks" / "1"
    deadline = time.monotonic() + 240
    while not (beat.exists() and beat.read_text().split() and int(beat.read_text().split()[0]) >= 2):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    pid = int(beat.read_text().split()[1])
    subprocess.run(["kill", "-9", str(pid)], check=True)
    output = process.communicate(timeout=180)[0]
    assert process.returncode == 1, output[-3000:]
    lines = _errors(output)
    assert lines and all(f"DDP: rank 1 (pid {pid}) died (exit code -9)" in line for line in lines), output[-3000:]
    # what was saved before the rank died stays whole: a checkpoint of an update before it, to resume from
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["global_step"] >= 1


@pytest.mark.slow  # waits out the watchdog's timeout; the fault catalogue's "a DDP rank that hangs" runs it too
def test_a_hung_rank_fails_the_run_within_the_timeout_naming_it(tmp_path):
    script = tmp_path / "train_hang.py"
    script.write_text(
        textwrap.dedent(f"""
        import time, hydra, lightning as L
        from omegaconf import open_dict
        from ganlab.train import run

        class HangRank1(L.Callback):
            def on_train_batch_end(self, trainer, *args):
                if trainer.global_rank == 1 and trainer.global_step >= 2:
                    time.sleep(3600)  # alive, not answering

        @hydra.main(version_base="1.3", config_path="{REPO / "conf"}", config_name="train")
        def main(cfg):
            with open_dict(cfg):
                cfg.callbacks.hang = {{"_target_": "__main__.HangRank1"}}
            return run(cfg)

        main()
    """)
    )
    start = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            *ARGS,
            "trainer.max_steps=100",
            "trainer.strategy.timeout_s=200",
            "callbacks.rank_watchdog.timeout_s=10",
            "callbacks.rank_watchdog.grace_s=20",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=400,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    lines = _errors(output)
    # Rank 0, waiting in a collective, names the hung rank. Each rank's watchdog logs what it saw: the hung rank's
    # own thread may blame rank 0, whose beat is just as old.
    assert lines and all("stopped answering (last answered" in line for line in lines), output[-3000:]
    assert any("DDP: rank 1 stopped answering" in line and "rank 0 was waiting" in line for line in lines), output[
        -3000:
    ]
    assert time.monotonic() - start < 300


@pytest.mark.slow
def test_a_rank_that_ends_badly_after_its_job_does_not_kill_the_sweep(tmp_path):
    """The multirun x DDP hang: Lightning's child observer of job N outlived its job and SIGKILLed the sweep (in
    job N+1, whose rank 1 then waited for a rendezvous for 30 minutes) when job N's rank 1 exited with an error
    after rank 0 had moved on. Jobs now reap their ranks and disarm that observer."""
    script = tmp_path / "train_rank1_exits_3.py"
    script.write_text(
        textwrap.dedent(f"""
        import atexit, os, hydra
        if os.environ.get("LOCAL_RANK") == "1":
            atexit.register(lambda: os._exit(3))
        from ganlab.train import run

        @hydra.main(version_base="1.3", config_path="{REPO / "conf"}", config_name="train")
        def main(cfg):
            return run(cfg)

        main()
    """)
    )
    sweep = tmp_path / "sweep"
    result = subprocess.run(
        [sys.executable, str(script), "-m", "seed=0,1,2", *ARGS, "trainer.max_steps=1", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert len(list(sweep.glob("*/checkpoints/last.ckpt"))) == 3
    assert output.count("ranks > 0 exited with rank 1") == 3 and "): 3" in output
