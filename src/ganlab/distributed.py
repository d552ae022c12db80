"""Hydra multiruns and Lightning's DDP launcher working together."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch.distributed as dist
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import read_write


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


@contextmanager
def multirun_ddp_job() -> Iterator[None]:
    """Run one multirun job so that Lightning's DDP launcher works in it, and in the jobs after it.

    Lightning starts ranks > 0 as ``python <argv> hydra.run.dir=<hydra.run.dir>``. In a multirun argv holds the
    whole sweep (``-m loss=gan,lsgan``), so each child would run a sweep of its own in extra run dirs
    (lightning-hydra-template issues 393, 194): argv becomes this job's own overrides and run.dir this job's dir.
    Lightning also leaves its process group and rank variables (LOCAL_RANK, WORLD_SIZE, ...) behind, which make the
    next job in the same process think its ranks were started outside and wait for them forever: both are undone
    when the job ends. Outside a multirun this does nothing.
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
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        sys.argv = argv
        os.environ.clear()
        os.environ.update(environ)
