"""What ``python train.py`` does with a composed config: train, report a known failure in one line, and return
the metric a sweeper minimizes (``optimized_metric``)."""

from __future__ import annotations

import logging
import signal
import time

from hydra.errors import InstantiationException
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from ganlab.callbacks.checkpoint_on_signal import Interrupted
from ganlab.callbacks.divergence_guard import DivergenceError
from ganlab.checkpoints import CheckpointError
from ganlab.config import ConfigError
from ganlab.console import quiet_library_messages, summary, write_result
from ganlab.data.idx import DataFileError
from ganlab.distributed import DDPError, ddp_problem, in_multirun
from ganlab.errors import one_line, report_in_one_line
from ganlab.runlock import RunDirBusy
from ganlab.train import train

log = logging.getLogger("ganlab")
report_in_one_line()  # composition errors (bad YAML, unknown option, missing key): one line; HYDRA_FULL_ERROR=1 for all

# Failures whose message says everything: a traceback would only hide it.
USER_ERRORS = (ConfigError, DataFileError, CheckpointError, DivergenceError, RunDirBusy, DDPError)


def optimized_metric(cfg: DictConfig, metrics: dict[str, float]) -> float | None:
    name = cfg.get("optimized_metric")
    if not name:
        return None
    if name not in metrics:
        raise ConfigError(
            f"optimized_metric={name} was not logged by this run (logged: {', '.join(sorted(metrics))}); set optimized_metric to one of them"
        )
    return metrics[name]


def run(cfg: DictConfig) -> float | None:
    """Train; exit 1 with one line on a user error (128 + signal after SIGTERM / SIGINT). In a multirun the
    error is raised instead, so that the sweeper records the job as failed."""
    if not cfg.get("verbose"):
        quiet_library_messages()
    start = time.perf_counter()
    try:
        try:
            result = train(cfg)
        except BaseException as err:  # result.json says how the run ended: report.py marks failed jobs
            write_result(cfg.paths.output_dir, time.perf_counter() - start, error=err)
            raise
        write_result(cfg.paths.output_dir, time.perf_counter() - start, result)
        if result["trainer"].is_global_zero:
            print(summary(cfg.paths.output_dir, result, time.perf_counter() - start, cfg.get("seed")), flush=True)
        return optimized_metric(cfg, result["metrics"])
    except Interrupted as err:
        if rank_zero_only.rank == 0:
            log.error("%s", err)
        raise SystemExit(128 + err.signum) from None
    except SIGTERMException:  # Lightning's own handler, before the first training step: nothing to save yet
        log.error("stopped by SIGTERM before training started; nothing was saved")
        raise SystemExit(128 + signal.SIGTERM) from None
    except USER_ERRORS as err:
        if in_multirun():
            raise
        if rank_zero_only.rank == 0:  # under DDP every rank stops on the same agreed error: say it once
            log.error("%s", err)
        raise SystemExit(1) from None
    except RuntimeError as err:  # a collective that failed because a rank died or stopped answering
        problem = ddp_problem(err)
        if problem is None:
            raise
        if in_multirun():
            raise DDPError(problem) from err
        log.error("%s", problem)
        raise SystemExit(1) from None
    except (OmegaConfBaseException, InstantiationException) as err:  # an interpolation to a missing key, a bad value
        line = one_line(err)
        if line is None or in_multirun():
            raise
        log.error("%s", line)
        raise SystemExit(1) from None
