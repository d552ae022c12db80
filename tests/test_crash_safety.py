"""Crash safety: atomic checkpoint writes, a full disk, a damaged last.ckpt, two runs on one
run dir, and runs killed with SIGKILL at random moments that resume to the weights of an uninterrupted run."""

from __future__ import annotations

import errno
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from ganlab.run.checkpoints import AtomicCheckpointIO, CheckpointError
from ganlab.run.run_lock import RunDirBusy, hold_run_dir
from ganlab.train import run, train

from conftest import compose_config

REPO = Path(__file__).resolve().parents[1]
NO_FID = ["++callbacks.fid=null", "++callbacks.best_fid_checkpoint=null", "callbacks.sample_grid=null", "logger=csv"]


def test_checkpoint_killed_mid_write_leaves_the_previous_one_whole(tmp_path):
    target = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "global_step": 1}, target)
    before = target.read_bytes()
    # A writer that stops halfway through a large checkpoint, then is killed.
    script = textwrap.dedent(f"""
        import time, torch
        from ganlab.run.checkpoints import AtomicCheckpointIO
        class Slow(AtomicCheckpointIO):
            @staticmethod
            def _write(f, data):
                f.write(data[: len(data) // 2]); f.flush(); print("half", flush=True); time.sleep(600)
        Slow().save_checkpoint({{"state_dict": {{"w": torch.ones(1_000_000)}}, "global_step": 2}}, {str(target)!r})
    """)
    writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "half"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert target.read_bytes() == before  # never half of a file
    assert torch.load(target, weights_only=False)["global_step"] == 1
    assert list(target.parent.glob(".last.ckpt.tmp-*"))  # what the kill left...
    with hold_run_dir(tmp_path):
        assert not list(target.parent.glob(".last.ckpt.tmp-*"))  # ...is cleared by the next run on the dir


def test_full_disk_during_a_checkpoint_write_fails_in_one_line_and_keeps_the_previous(
    make_cfg, tmp_path, monkeypatch, caplog
):
    train(make_cfg(["model=mlp", "trainer.max_steps=2", *NO_FID]))
    last = tmp_path / "checkpoints" / "last.ckpt"
    before = last.read_bytes()

    def full(f, data):
        f.write(data[:100])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(AtomicCheckpointIO, "_write", staticmethod(full))
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as exit_:
        run(make_cfg(["model=mlp", "trainer.max_steps=4", f"ckpt_path={last}", *NO_FID]))
    assert exit_.value.code == 1
    (message,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert (
        message.startswith(f"could not write checkpoint {tmp_path / 'checkpoints'}/") and "the disk is full" in message
    )
    assert "\n" not in message and "resume with ckpt_path=" in message
    assert last.read_bytes() == before
    assert not list(last.parent.glob(".*tmp*"))


def test_damaged_last_checkpoint_resumes_from_the_newest_good_one_with_a_warning(make_cfg, tmp_path, caplog):
    args = ["model=mlp", "callbacks.model_checkpoint.every_n_train_steps=2", *NO_FID]
    train(make_cfg([*args, "trainer.max_steps=4"]))
    last = tmp_path / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:2000])  # a disk that lost the file's tail
    with caplog.at_level(logging.WARNING):
        resumed = train(make_cfg([*args, "trainer.max_steps=6", f"ckpt_path={last}"]))
    assert resumed["trainer"].global_step == 6
    assert any(
        f"{last} is damaged" in r.getMessage() and "step_0000004.ckpt (step 4)" in r.getMessage()
        for r in caplog.records
    )
    with pytest.raises(
        CheckpointError, match="not a readable Lightning checkpoint"
    ):  # an explicit step file: no guessing
        step = tmp_path / "checkpoints" / "step_0000002.ckpt"
        step.write_bytes(b"junk")
        train(make_cfg([*args, "trainer.max_steps=6", f"ckpt_path={step}"]))


def test_two_runs_on_one_run_dir_do_not_interleave(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import time
        from ganlab.run.run_lock import hold_run_dir
        with hold_run_dir({str(tmp_path)!r}):
            print("held", flush=True); time.sleep(600)
    """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(
            RunDirBusy, match=f"^{tmp_path} is in use by pid {holder.pid} on {socket.gethostname()} since "
        ):
            with hold_run_dir(tmp_path):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with hold_run_dir(tmp_path):  # the kernel dropped the killed holder's lock: no stale lock
        assert (tmp_path / ".lock").read_text().startswith(f"pid {os.getpid()} ")


# ---- SIGKILL at random moments -------------------------------------------------------------------------------
KILL_ARGS = [
    "model=mlp",
    "logger=csv",
    "trainer.deterministic=true",
    "trainer.limit_train_batches=4",
    "trainer.limit_val_batches=2",
    "callbacks.model_checkpoint.every_n_train_steps=1",
    "callbacks.sample_grid=null",
    "++callbacks.fid=null",
    "++callbacks.best_fid_checkpoint=null",
    "callbacks.progress_bar=null",
    "trainer.enable_model_summary=false",
    "data.download=false",
    "data.batch_size=16",
    "trainer.log_every_n_steps=1",
]


@pytest.mark.slow
def test_runs_killed_at_random_moments_resume_to_the_weights_of_an_uninterrupted_run(tmp_path):
    steps, kills, rng = 60, 10, random.Random(11)
    run_dir = tmp_path / "run"
    last = run_dir / "checkpoints" / "last.ckpt"
    command = [
        sys.executable,
        str(REPO / "train.py"),
        *KILL_ARGS,
        f"trainer.max_steps={steps}",
        f"hydra.run.dir={run_dir}",
    ]
    done = False
    for attempt in range(kills + 1):
        resume = [f"ckpt_path={last}"] if last.exists() else []
        process = subprocess.Popen(
            [*command, *resume], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        if attempt < kills:
            # A random moment: at start-up, between steps, or during a write (a checkpoint every step).
            start_step = torch.load(last, weights_only=False)["global_step"] if last.exists() else 0
            target = start_step + rng.randint(0, 4)
            deadline = time.monotonic() + 300
            while process.poll() is None and time.monotonic() < deadline:
                step = torch.load(last, weights_only=False)["global_step"] if last.exists() else 0
                if step >= target:
                    time.sleep(rng.random() * 0.5)
                    break
                time.sleep(0.05)
            process.send_signal(signal.SIGKILL)
            process.wait()
            if process.returncode == 0:
                done = True
                break
        else:
            _, err = process.communicate(timeout=600)
            assert process.returncode == 0, err[-3000:]
            done = True
    assert done
    resumed = torch.load(last, weights_only=False)
    assert resumed["global_step"] == steps

    reference = train(
        compose_config(
            tmp_path / "reference",
            [a for a in KILL_ARGS if a != "callbacks.progress_bar=null"] + [f"trainer.max_steps={steps}"],
        )
    )
    for name, tensor in reference["model"].state_dict().items():
        assert torch.equal(tensor, resumed["state_dict"][name]), name
