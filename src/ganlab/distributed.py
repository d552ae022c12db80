"""Hydra and Lightning's DDP launcher working together."""

from __future__ import annotations

import sys

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import read_write


def keep_ddp_ranks_in_this_job() -> None:
    """Make Lightning's DDP re-launch of this script join the current Hydra multirun job.

    Lightning starts ranks > 0 as ``python <argv> hydra.run.dir=<hydra.run.dir>``. In a multirun, argv holds the
    whole sweep (``-m loss=gan,lsgan``), so each child would run a sweep of its own and make extra run dirs
    (lightning-hydra-template issues 393, 194). Rewriting argv to this job's own overrides, and run.dir to this
    job's output dir, makes each child a single run in the parent's job dir. A no-op outside a multirun.
    """
    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return
    sys.argv = [sys.argv[0], *hydra_cfg.overrides.task]
    with read_write(hydra_cfg):
        hydra_cfg.run.dir = hydra_cfg.runtime.output_dir
