"""``python train.py``: ``train(cfg)``, one flat sequence from a composed config to a trained GAN, and ``run(cfg)``,
what the command does with it: report a known failure in one line, and return the metric a sweeper minimizes
(``optimized_metric``). The top-level ``train.py`` calls ``run``."""

from __future__ import annotations

import hashlib
import logging
import os
import random
import signal
import time
from typing import Any

import lightning as L
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, open_dict
from omegaconf.errors import OmegaConfBaseException

import ganlab.config.family_schemas  # noqa: F401  (registers the config schemas that conf/ extends)
from ganlab.callbacks.checkpoint_on_signal import Interrupted
from ganlab.callbacks.divergence_guard import DivergenceError
from ganlab.config.checks import ConfigError, check_config
from ganlab.config.composition_errors import one_line, report_in_one_line
from ganlab.data.idx import DataFileError
from ganlab.models.gan import GAN
from ganlab.run.checkpoints import CheckpointError, check_resumable
from ganlab.run.console import quiet_library_messages, summary, write_result
from ganlab.run.distributed import DDPError, ddp_job, ddp_problem, in_multirun
from ganlab.run.hparams_tab import log_hparams
from ganlab.run.provenance import record_run
from ganlab.run.run_lock import RunDirBusy, hold_run_dir

log = logging.getLogger("ganlab")  # the package logger: errors reach the console as one line


def _instantiate_list(group: DictConfig | None) -> list[Any]:
    """Callbacks and loggers are dicts of named configs, so that one can be switched off with ``name=null``."""
    return [instantiate(node) for node in (group or {}).values() if node is not None and "_target_" in node]


# Environment variables that one job's ranks share and that differ between jobs, in the order they are trusted.
# Lightning's own launcher passes PL_GLOBAL_SEED itself; external launchers start every rank on its own.
JOB_IDS = ("TORCHELASTIC_RUN_ID", "SLURM_JOB_ID", "LSB_JOBID", "PBS_JOBID")


def _job_identity(environ: dict[str, str]) -> str | None:
    """A string every rank of one distributed job sees alike (None for a single process): the launcher's job id,
    else the rendezvous address MASTER_ADDR:MASTER_PORT. torchrun without ``--standalone`` or ``--rdzv-id`` leaves
    its run id at "none", so the address is added to it."""
    if (
        int(environ.get("WORLD_SIZE", 1)) <= 1
        and "SLURM_JOB_ID" not in environ
        and "TORCHELASTIC_RUN_ID" not in environ
    ):
        return None
    parts = [f"{name}={environ[name]}" for name in JOB_IDS if environ.get(name) not in (None, "", "none")]
    if not parts or environ.get("TORCHELASTIC_RUN_ID") == "none":
        if "MASTER_ADDR" in environ and "MASTER_PORT" in environ:
            parts.append(f"MASTER={environ['MASTER_ADDR']}:{environ['MASTER_PORT']}")
    return ";".join(parts) or None


def _run_seed(seed: int | None, environ: dict[str, str] | None = None) -> int:
    """The configured seed, or for ``seed=null`` one that every rank of the job agrees on.

    - a rank re-launched by Lightning's launcher reads PL_GLOBAL_SEED, which rank 0 set in ``seed_everything``;
    - ranks started by an external launcher (torchrun, SLURM's srun, a manual multi-node launch) each start alone,
      so the seed is derived from what the job's ranks share (``_job_identity``): the same seed, the same
      train/val split (``data.seed: ${seed}``) and disjoint shards on every rank, and another seed for another job;
    - a single process draws a fresh one.
    """
    if seed is not None:
        return seed
    environ = os.environ if environ is None else environ
    started_by_lightning = int(environ.get("LOCAL_RANK", 0)) > 0 and "TORCHELASTIC_RUN_ID" not in environ
    if "PL_GLOBAL_SEED" in environ and (started_by_lightning or _job_identity(environ) is not None):
        return int(environ["PL_GLOBAL_SEED"])
    identity = _job_identity(environ)
    if identity is not None:
        seed = int.from_bytes(hashlib.sha256(identity.encode()).digest()[:4], "little") % 2**31
        log.info(
            "seed=null under a distributed launcher: seed %d, derived from %s (the same on every rank)", seed, identity
        )
        return seed
    return random.SystemRandom().randrange(2**31)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train as ``cfg`` says. Returns the final logged metrics with the trainer, model and datamodule."""
    callbacks_cfg = cfg.get("callbacks") or {}
    if callbacks_cfg.get("fid") is None and callbacks_cfg.get("best_fid_checkpoint") is not None:
        with open_dict(cfg):  # it keeps the checkpoint of lowest val/fid, which callbacks.fid=null no longer logs
            cfg.callbacks.best_fid_checkpoint = None
        log.info("callbacks.fid=null: best_fid_checkpoint is off too (it selects by val/fid)")
    with open_dict(cfg):  # written back so that the data split and order (data.seed: ${seed}) use it too
        cfg.seed = L.seed_everything(_run_seed(cfg.get("seed")), workers=True)
    check_config(cfg)  # out-of-range values and an unwritable output dir fail before anything is built

    model: GAN = instantiate(
        cfg.model,
        loss=cfg.loss,
        optimizer=cfg.optimizer,
        _recursive_=False,  # GAN builds its parts itself, so checkpoints can rebuild it from hparams
        _convert_="all",  # hparams as plain dicts: checkpoints then load without omegaconf
    )
    # One clear line, not a state-dict traceback; a damaged last.ckpt gives way to the newest good checkpoint.
    ckpt_path = check_resumable(cfg.get("ckpt_path"), model, cfg.paths.output_dir)
    datamodule: L.LightningDataModule = instantiate(cfg.data, discriminator_steps=model.discriminator_steps)
    callbacks = _instantiate_list(cfg.get("callbacks"))
    loggers = _instantiate_list(cfg.get("logger"))
    # callbacks.progress_bar=null means no bar: without this Lightning would put its own TQDM bar in its place.
    shows_bar = cfg.trainer.enable_progress_bar and any(isinstance(c, ProgressBar) for c in callbacks)
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, enable_progress_bar=shows_bar
    )

    with hold_run_dir(cfg.paths.output_dir):  # a second run on this dir stops here, naming the first
        # The FID callback's feature network, trained now if missing: once, not on every rank.
        for callback in callbacks:
            if callable(getattr(callback, "prepare", None)):
                callback.prepare(datamodule, model)
        record_run(cfg, cfg.paths.output_dir)  # config, git commit, package versions: appended to provenance.yaml
        log_hparams(loggers, cfg, model)  # TensorBoard's HPARAMS tab: a flat selection, with the metric names
        log.info(
            "Training %s (%s) with %s on %s; outputs in %s",
            cfg.model.generator._target_,
            parameter_counts(model),
            model.loss,
            datamodule.name,
            cfg.paths.output_dir,
        )
        with ddp_job(trainer):
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
            if cfg.get("test"):
                trainer.test(model, datamodule=datamodule)

    metrics = {name: value.item() for name, value in trainer.callback_metrics.items()}
    return {"metrics": metrics, "trainer": trainer, "model": model, "datamodule": datamodule}


def parameter_counts(model: L.LightningModule) -> str:
    """'G 228K, D 201K parameters': the sizes from Lightning's model summary table, in one line."""
    sizes = {
        "G": sum(p.numel() for net in model.generator_networks() for p in net.parameters()),
        "D": sum(p.numel() for net in model.discriminator_networks() for p in net.parameters()),
    }
    return ", ".join(f"{name} {count / 1e3:,.0f}K" for name, count in sizes.items()) + " parameters"


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
