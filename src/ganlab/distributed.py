"""Hydra multiruns and Lightning's DDP launcher working together."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
import torch.distributed as dist
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.strategies import DDPStrategy
from omegaconf import read_write

log = logging.getLogger(__name__)

# How long a job waits for a rank > 0 to exit after rank 0 is done, before killing it.
REAP_TIMEOUT_S = 60.0


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def ddp_strategy(timeout_s: float = 300.0, **kwargs: Any) -> DDPStrategy:
    """Lightning's DDPStrategy with a bounded process-group timeout (conf/accelerator/ddp*.yaml): a collective or
    a rendezvous that a rank never joins fails after ``timeout_s`` instead of torch's 30 minutes."""
    return DDPStrategy(timeout=timedelta(seconds=timeout_s), **kwargs)


def _child_ranks(trainer: L.Trainer | None) -> list[subprocess.Popen]:
    launcher = getattr(getattr(trainer, "strategy", None), "launcher", None)
    return list(getattr(launcher, "procs", None) or [])


def _disarm_observers(procs: list[subprocess.Popen]) -> None:
    """Lightning watches the ranks it started with a thread that SIGKILLs the main process when one of them exits
    with an error, even after the job is over. In a sweep that thread outlives its job: a rank of job N that fails
    late kills the sweep in job N+1, leaving that job's rank 1 waiting for a rendezvous that never comes."""
    for thread in threading.enumerate():
        if getattr(thread, "_child_processes", None) is not None and any(p in procs for p in thread._child_processes):
            thread._run = lambda: True  # its loop ends at its next look


def reap_child_ranks(trainer: L.Trainer | None, timeout_s: float = REAP_TIMEOUT_S) -> None:
    """Wait for the ranks > 0 that this process started (bounded), kill any that outlive the job, and say how each
    ended. Lightning does not wait for them: they used to run on (and hold their sockets) into the next job."""
    procs = _child_ranks(trainer)
    _disarm_observers(procs)
    deadline = time.monotonic() + timeout_s
    for rank, proc in enumerate(procs, 1):
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.error("rank %d (pid %d) was still running %.0f s after the job ended; killed it", rank, proc.pid, timeout_s)
            proc.kill()
            proc.wait()
    if procs:
        level = logging.WARNING if any(proc.returncode for proc in procs) else logging.INFO
        log.log(level, "DDP job done: MASTER_PORT=%s; ranks > 0 exited with %s", os.environ.get("MASTER_PORT"),
                 ", ".join(f"rank {rank} (pid {proc.pid}): {proc.returncode}" for rank, proc in enumerate(procs, 1)))


@contextmanager
def multirun_ddp_job(trainer: L.Trainer | None = None) -> Iterator[None]:
    """Run one multirun job so that Lightning's DDP launcher works in it, and in the jobs after it.

    Lightning starts ranks > 0 as ``python <argv> hydra.run.dir=<hydra.run.dir>``. In a multirun argv holds the
    whole sweep (``-m loss=gan,lsgan``), so each child would run a sweep of its own in extra run dirs
    (lightning-hydra-template issues 393, 194): argv becomes this job's own overrides and run.dir this job's dir.
    Lightning also leaves its process group and rank variables (LOCAL_RANK, WORLD_SIZE, ...) behind, which make the
    next job in the same process think its ranks were started outside and wait for them forever: both are undone
    when the job ends, after the job's ranks > 0 have exited (``reap_child_ranks``). Outside a multirun this does
    nothing.
    """
    if not in_multirun():
        yield
        return
    hydra_cfg = HydraConfig.get()
    argv, environ = list(sys.argv), dict(os.environ)
    sys.argv = [sys.argv[0], *hydra_cfg.overrides.task]
    with read_write(hydra_cfg):
        hydra_cfg.run.dir = hydra_cfg.runtime.output_dir
    try:
        yield
    finally:
        reap_child_ranks(trainer)
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        sys.argv = argv
        os.environ.clear()
        os.environ.update(environ)


class DDPError(RuntimeError):
    """A rank stopped answering: the message names it."""


LAST_PROBLEM: str | None = None  # what the RankWatchdog of a failed fit found, for ganlab.cli to report


def ddp_problem(err: BaseException | None = None) -> str | None:
    """One line for a failed collective or rendezvous: the rank the watchdog found stopped answering in the last
    failed fit, else (for torch's own distributed errors) their first line. None: not a DDP failure."""
    if LAST_PROBLEM is not None:
        return LAST_PROBLEM
    if isinstance(err, dist.DistError):
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        where = f" (rendezvous at {os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')})" if "MASTER_PORT" in os.environ else ""
        return f"DDP: the ranks could not reach each other within the process-group timeout{where}: {first}; a rank > 0 did not start or answer (see train_ddp_process_<rank>.log), or raise trainer.strategy.timeout_s"
    return None


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
        global LAST_PROBLEM
        LAST_PROBLEM = None
        if trainer.world_size < 2 or stage != "fit":
            return
        self._dir = Path(trainer.default_root_dir) / ".ranks"
        self._dir.mkdir(parents=True, exist_ok=True)
        self._rank, self._world = trainer.global_rank, trainer.world_size
        self._procs = _child_ranks(trainer)
        _disarm_observers(self._procs)  # Lightning's would SIGKILL this process, without a word, when a rank dies
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
        distributed = isinstance(exception, dist.DistError) or any(word in str(exception) for word in ("gloo", "nccl", "Connection reset", "Connection closed"))
        if self.problem is None and self._dir is not None and distributed:
            # The collective failed before the watchdog's next look: a dead rank shows within moments.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not any(proc.poll() is not None for proc in self._procs):
                time.sleep(0.1)
            self.problem = f"DDP: {self._culprit()}; rank {self._rank} was waiting for it after step {self._step}. The job fails: see that rank's log (train_ddp_process_<rank>.log) and resume from checkpoints/last.ckpt"
        global LAST_PROBLEM
        LAST_PROBLEM = self.problem

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
