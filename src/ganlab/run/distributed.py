"""Hydra multiruns and Lightning's DDP launcher working together."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import lightning as L
import torch.distributed as dist
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.overrides.distributed import _sync_module_states
from lightning.pytorch.strategies import DDPStrategy
from omegaconf import read_write
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors
from torch.distributed.distributed_c10d import _get_default_group
from torch.optim import Optimizer

log = logging.getLogger(__name__)

# How long a job waits for a rank > 0 to exit after rank 0 is done, before killing it.
REAP_TIMEOUT_S = 60.0


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def ddp_strategy(timeout_s: float = 300.0, per_network: bool = True, **kwargs: Any) -> DDPStrategy:
    """DDP with a bounded process-group timeout (conf/accelerator/ddp*.yaml): a collective or a rendezvous that a
    rank never joins fails after ``timeout_s`` instead of torch's 30 minutes. ``per_network``: each optimizer step
    all-reduces only the gradients of the network it steps (``PerNetworkDDPStrategy``); false: Lightning's one
    DistributedDataParallel around the whole module, whose options (``find_unused_parameters: true``, which D and
    G taking turns need there) ``kwargs`` pass on."""
    if not per_network:
        return DDPStrategy(timeout=timedelta(seconds=timeout_s), **kwargs)
    if kwargs:
        raise ValueError(
            f"trainer.strategy: {', '.join(sorted(kwargs))} configure the DistributedDataParallel wrapper, which the "
            f"per-network strategy does not use: remove them, or set trainer.strategy.per_network=false"
        )
    return PerNetworkDDPStrategy(timeout=timedelta(seconds=timeout_s))


class PerNetworkDDPStrategy(DDPStrategy):
    """DDP for models whose networks take turns (manual optimization, one optimizer per network or phase): no
    DistributedDataParallel wrapper; each optimizer step first averages the gradients of that optimizer's own
    parameters over the ranks, in one coalesced all-reduce, as StyleGAN2-ADA's training loop does by hand.

    Lightning's DDPStrategy wraps the whole LightningModule, so every backward all-reduces G's and D's
    gradients alike, the untrained network's as zeros, and needs ``find_unused_parameters`` (a search of the
    graph each backward) because each update leaves one network out (Lightning issues 20328, 20866; PR 20936
    proposes one wrapper per network). Here each update sends what it trained: D's gradients at D's step, G's at
    G's, half the bytes for a one-D-step update. What the wrapper also did is kept: every rank starts from rank
    0's parameters and buffers, and rank 0's buffers (BatchNorm's running statistics) are broadcast at the start
    of every training step. ``reduced_bytes`` counts the gradient bytes this rank has all-reduced.
    """

    strategy_name = "ddp_per_network"

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.reduced_bytes = 0

    def configure_ddp(self) -> None:
        if self.lightning_module.automatic_optimization:
            raise ValueError(
                "the per-network DDP strategy averages gradients at each manual optimizer step, and this module "
                "uses automatic optimization: set trainer.strategy.per_network=false"
            )
        _sync_module_states(self.model)  # what DistributedDataParallel's constructor does: rank 0's start everywhere

    def training_step(self, *args: Any, **kwargs: Any) -> Any:
        self._broadcast_buffers()
        return super().training_step(*args, **kwargs)

    def optimizer_step(self, optimizer: Optimizer, closure: Callable[[], Any], model: Any = None, **kwargs: Any) -> Any:
        # Manual optimization: the gradients exist before the step (its closure does nothing), so they are averaged
        # before the precision plugin unscales and clips them and the optimizer reads them.
        self._average_gradients(optimizer)
        return super().optimizer_step(optimizer, closure, model, **kwargs)

    def _average_gradients(self, optimizer: Optimizer) -> None:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if not grads or self.world_size == 1:
            return
        flat = _flatten_dense_tensors(grads)
        dist.all_reduce(flat)
        flat /= self.world_size
        for grad, averaged in zip(grads, _unflatten_dense_tensors(flat, grads)):
            grad.copy_(averaged)
        self.reduced_bytes += flat.numel() * flat.element_size()

    def _broadcast_buffers(self) -> None:
        buffers = list(self.lightning_module.buffers())
        if not buffers or self.world_size == 1:
            return
        dist._broadcast_coalesced(_get_default_group(), buffers, 250 * 1024 * 1024, 0)


def child_ranks(trainer: L.Trainer | None) -> list[subprocess.Popen]:
    launcher = getattr(getattr(trainer, "strategy", None), "launcher", None)
    return list(getattr(launcher, "procs", None) or [])


def disarm_observers(procs: list[subprocess.Popen]) -> None:
    """Lightning watches the ranks it started with a thread that SIGKILLs the main process when one of them exits
    with an error, even after the job is over. In a sweep that thread outlives its job: a rank of job N that fails
    late kills the sweep in job N+1, leaving that job's rank 1 waiting for a rendezvous that never comes."""
    for thread in threading.enumerate():
        if getattr(thread, "_child_processes", None) is not None and any(p in procs for p in thread._child_processes):
            thread._run = lambda: True  # its loop ends at its next look


def reap_child_ranks(trainer: L.Trainer | None, timeout_s: float = REAP_TIMEOUT_S) -> None:
    """Wait for the ranks > 0 that this process started (bounded), kill any that outlive the job, and say how each
    ended. Lightning does not wait for them: they used to run on (and hold their sockets) into the next job."""
    procs = child_ranks(trainer)
    disarm_observers(procs)
    deadline = time.monotonic() + timeout_s
    for rank, proc in enumerate(procs, 1):
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.error(
                "rank %d (pid %d) was still running %.0f s after the job ended; killed it", rank, proc.pid, timeout_s
            )
            proc.kill()
            proc.wait()
    if procs:
        level = logging.WARNING if any(proc.returncode for proc in procs) else logging.INFO
        log.log(
            level,
            "DDP job done: MASTER_PORT=%s; ranks > 0 exited with %s",
            os.environ.get("MASTER_PORT"),
            ", ".join(f"rank {rank} (pid {proc.pid}): {proc.returncode}" for rank, proc in enumerate(procs, 1)),
        )


@contextmanager
def ddp_job(trainer: L.Trainer | None = None) -> Iterator[None]:
    """Run one job (``trainer.fit``) so that its process group ends with it, and, in a multirun, so that Lightning's
    DDP launcher works in it and in the jobs after it.

    The process group is destroyed when the job ends, however it ends: left to interpreter exit, gloo's worker
    threads can abort the process (SIGABRT, "terminate called without an active exception", pytorch/pytorch#190489)
    after the run has said how it ended, turning exit code 0 or 1 into -6 now and then.

    Lightning starts ranks > 0 as ``python <argv> hydra.run.dir=<hydra.run.dir>``. In a multirun argv holds the
    whole sweep (``-m loss=gan,lsgan``), so each child would run a sweep of its own in extra run dirs
    (lightning-hydra-template issues 393, 194): argv becomes this job's own overrides and run.dir this job's dir.
    Lightning also leaves its process group and rank variables (LOCAL_RANK, WORLD_SIZE, ...) behind, which make the
    next job in the same process think its ranks were started outside and wait for them forever: both are undone
    when the job ends, after the job's ranks > 0 have exited (``reap_child_ranks``).
    """
    if not in_multirun():
        try:
            yield
        finally:
            end_process_group()
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
        end_process_group()
        sys.argv = argv
        os.environ.clear()
        os.environ.update(environ)


def end_process_group() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class DDPError(RuntimeError):
    """A rank stopped answering: the message names it."""


LAST_PROBLEM: str | None = None  # what callbacks.rank_watchdog found in a failed fit, for ganlab.train to report


def ddp_problem(err: BaseException | None = None) -> str | None:
    """One line for a failed collective or rendezvous: the rank the watchdog found stopped answering in the last
    failed fit, else (for torch's own distributed errors) their first line. None: not a DDP failure."""
    if LAST_PROBLEM is not None:
        return LAST_PROBLEM
    if isinstance(err, dist.DistError):
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        where = (
            f" (rendezvous at {os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')})"
            if "MASTER_PORT" in os.environ
            else ""
        )
        return f"DDP: the ranks could not reach each other within the process-group timeout{where}: {first}; a rank > 0 did not start or answer (see train_ddp_process_<rank>.log), or raise trainer.strategy.timeout_s"
    return None
