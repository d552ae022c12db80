"""Under DDP, a rank that dies or stops answering fails the job in one line naming it, instead of a hang."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch.distributed as dist

from ganlab.run import distributed

log = logging.getLogger(__name__)


class RankWatchdog(L.Callback):
    """Under DDP, name the rank that stops answering and fail the job in one line.

    Every rank touches ``<run dir>/.ranks/<rank>`` after each step. A thread on each rank looks every second: on
    rank 0, whether a rank it started has died; on any rank, whether it has itself been stuck for ``timeout_s``
    (waiting in a collective for a rank that does not come). Then it logs one line naming the rank (the dead one,
    or the one whose last step is the oldest). The bounded process-group timeout (``ddp_strategy``) makes the
    stuck collective raise, and the job fails with that line (``DDPError``); should the main thread still not
    return ``grace_s`` later, the watchdog kills the ranks and ends the process itself.
    """

    def __init__(self, timeout_s: float = 300.0, grace_s: float = 60.0, poll_s: float = 1.0):
        self.timeout_s, self.grace_s, self.poll_s = timeout_s, grace_s, poll_s
        self.problem: str | None = None
        self._beat = time.monotonic()
        self._step = 0
        self._stop = threading.Event()
        self._dir: Path | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        distributed.LAST_PROBLEM = None
        if trainer.world_size < 2 or stage != "fit":
            return
        self._dir = Path(trainer.default_root_dir) / ".ranks"
        self._dir.mkdir(parents=True, exist_ok=True)
        self._rank, self._world = trainer.global_rank, trainer.world_size
        self._procs = distributed.child_ranks(trainer)
        distributed.disarm_observers(
            self._procs
        )  # Lightning's would SIGKILL this process, without a word, when a rank dies
        self._touch(trainer)
        self._stop.clear()
        threading.Thread(target=self._watch, name="ganlab-rank-watchdog", daemon=True).start()

    def _touch(self, trainer: L.Trainer) -> None:
        self._beat, self._step = time.monotonic(), trainer.global_step
        if self._dir is not None:
            (self._dir / str(self._rank)).write_text(f"{trainer.global_step} {os.getpid()}\n")

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if self._dir is not None:
            self._touch(trainer)

    def on_validation_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if self._dir is not None:
            self._touch(trainer)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._stop.set()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._stop.set()
        collective_failed = isinstance(exception, dist.DistError) or any(
            word in str(exception) for word in ("gloo", "nccl", "Connection reset", "Connection closed")
        )
        if self.problem is None and self._dir is not None and collective_failed:
            # The collective failed before the watchdog's next look: a dead rank shows within moments.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not any(proc.poll() is not None for proc in self._procs):
                time.sleep(0.1)
            self.problem = f"DDP: {self._culprit()}; rank {self._rank} was waiting for it after step {self._step}. The job fails: see that rank's log (train_ddp_process_<rank>.log) and resume from checkpoints/last.ckpt"
        distributed.LAST_PROBLEM = self.problem

    def _culprit(self) -> str:
        for rank, proc in enumerate(self._procs, 1):
            if proc.poll() is not None and proc.returncode != 0:
                return f"rank {rank} (pid {proc.pid}) died (exit code {proc.returncode})"
        ages = {}
        for rank in range(self._world):
            beat = self._dir / str(rank)
            ages[rank] = time.time() - beat.stat().st_mtime if beat.exists() else float("inf")
        ages.pop(self._rank, None)
        if not ages:
            return "no other rank"
        rank = max(ages, key=ages.get)
        age = "never reported a step" if ages[rank] == float("inf") else f"last answered {ages[rank]:.0f} s ago"
        return f"rank {rank} stopped answering ({age})"

    def _watch(self) -> None:
        give_up = float("inf")
        while not self._stop.wait(self.poll_s):
            dead = [proc for proc in self._procs if proc.poll() is not None and proc.returncode != 0]
            stuck = time.monotonic() - self._beat
            if (dead or stuck > self.timeout_s) and self.problem is None:
                self.problem = f"DDP: {self._culprit()}; rank {self._rank} was waiting for it after step {self._step}. The job fails: see that rank's log (train_ddp_process_<rank>.log) and resume from checkpoints/last.ckpt"
                log.error("%s", self.problem)
                give_up = time.monotonic() + (min(self.grace_s, 10.0) if dead else self.grace_s)
                for proc in self._procs:  # the other ranks cannot go on without it
                    if proc.poll() is None:
                        proc.kill()
            if self.problem is not None and time.monotonic() > give_up:
                log.error("%s; no rank returned %.0f s later: ending the process", self.problem, self.grace_s)
                for proc in self._procs:
                    proc.kill()
                logging.shutdown()
                os._exit(1)
