"""Loop Hydra multiruns of DDP jobs (accelerator=ddp_cpu) and count how many sweeps pass.

    python bench/ddp_sweep_loop.py --loops 20 --jobs 6

Each sweep is a real ``python train.py -m ... accelerator=ddp_cpu`` in its own process session, with a wall-clock
limit: a sweep that hangs is reported with the processes still alive (the rank that stopped answering) and
killed. Each job logs its MASTER_PORT and how its ranks ended (ganlab.run.distributed), collected here per sweep.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOSSES = ["gan", "nsgan", "lsgan", "hinge", "wgan_gp", "gan", "nsgan", "lsgan", "hinge", "wgan_gp"]


def alive_in_session(sid: int) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,sid,stat,etimes,args"], capture_output=True, text=True).stdout
    return [line.strip()[:160] for line in out.splitlines()[1:] if line.split()[1] == str(sid)]


def one_sweep(index: int, jobs: int, limit: float, work: Path) -> tuple[str, float, list[str]]:
    sweep_dir = work / f"sweep{index}"
    losses = ",".join(f"{loss}" for loss in LOSSES[:jobs])
    # seed varies per job so that Hydra sees distinct jobs even when a loss repeats
    args = [
        "-m",
        "model=mlp",
        f"loss={LOSSES[0]}",
        f"seed={','.join(str(s) for s in range(jobs))}",
        "accelerator=ddp_cpu",
        "trainer.max_steps=1",
        "data.batch_size=8",
        "callbacks.progress_bar=null",
        "trainer.enable_model_summary=false",
        "data.download=false",
        "logger=csv",
        "++callbacks.fid=null",
        "++callbacks.best_fid_checkpoint=null",
        "callbacks.sample_grid=null",
        "trainer.limit_val_batches=1",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    del losses
    start = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *args],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=limit)
        status = "pass" if process.returncode == 0 else f"fail (exit {process.returncode})"
    except subprocess.TimeoutExpired:
        alive = alive_in_session(process.pid)
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        status = "HANG: alive after limit: " + " | ".join(alive)
    ports = re.findall(r"DDP job .*", output)
    if not status.startswith("pass"):
        ports += output.strip().splitlines()[-5:]
    # Every job dir must hold its checkpoint.
    done = len(list(sweep_dir.glob("*/checkpoints/last.ckpt"))) if sweep_dir.exists() else 0
    if status == "pass" and done != jobs:
        status = f"fail ({done}/{jobs} jobs left a checkpoint)"
    return status, time.monotonic() - start, ports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=6)
    parser.add_argument("--limit", type=float, default=600, help="seconds a sweep may take before it counts as hung")
    parser.add_argument("--minutes", type=float, default=None, help="stop starting sweeps after this many minutes")
    args = parser.parse_args()
    passed = ran = 0
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ddp_sweep_loop.") as tmp:
        for index in range(args.loops):
            if args.minutes is not None and time.monotonic() - began > args.minutes * 60:
                break
            status, seconds, notes = one_sweep(index, args.jobs, args.limit, Path(tmp))
            ran += 1
            passed += status == "pass"
            print(f"sweep {index + 1}: {status} in {seconds:.0f} s", flush=True)
            for note in notes:
                print(f"    {note}", flush=True)
    print(f"{passed}/{ran} sweeps of {args.jobs} ddp_cpu jobs passed", flush=True)
    sys.exit(0 if passed == ran else 1)


if __name__ == "__main__":
    main()
