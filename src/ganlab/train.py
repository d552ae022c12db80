"""``train(cfg)``: one flat sequence from a composed config to a trained GAN. The top-level ``train.py`` calls it."""

from __future__ import annotations

import logging
import os
import random
from typing import Any

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from ganlab.config import check_config
from ganlab.distributed import multirun_ddp_job
from ganlab.checkpoints import check_resumable
from ganlab.models.gan import GAN
from ganlab.provenance import record_run
from ganlab.runlock import hold_run_dir

log = logging.getLogger(__name__)


def _instantiate_list(group: DictConfig | None) -> list[Any]:
    """Callbacks and loggers are dicts of named configs, so that one can be switched off with ``name=null``."""
    return [instantiate(node) for node in (group or {}).values() if node is not None and "_target_" in node]


def _run_seed(seed: int | None) -> int:
    """The configured seed, or for ``seed=null`` a fresh draw, shared with the DDP ranks this process starts."""
    if seed is not None:
        return seed
    if int(os.environ.get("LOCAL_RANK", 0)) > 0 and "PL_GLOBAL_SEED" in os.environ:
        return int(os.environ["PL_GLOBAL_SEED"])  # a rank re-launched by rank 0, which set it in seed_everything
    return random.SystemRandom().randrange(2**31)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train as ``cfg`` says. Returns the final logged metrics with the trainer, model and datamodule."""
    check_config(cfg)  # out-of-range values and an unwritable output dir fail before anything is built
    with open_dict(cfg):  # written back so that the data order (data.seed: ${seed}) uses it too
        cfg.seed = L.seed_everything(_run_seed(cfg.get("seed")), workers=True)

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
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)

    with hold_run_dir(cfg.paths.output_dir):  # a second run on this dir stops here, naming the first
        record_run(cfg, cfg.paths.output_dir)  # config, git commit, package versions: appended to provenance.yaml
        for logger in loggers:
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        log.info("Training %s with %s on %s; outputs in %s", cfg.model.generator._target_, model.loss, datamodule.name, cfg.paths.output_dir)
        with multirun_ddp_job(trainer):
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
            if cfg.get("test"):
                trainer.test(model, datamodule=datamodule)

    metrics = {name: value.item() for name, value in trainer.callback_metrics.items()}
    return {"metrics": metrics, "trainer": trainer, "model": model, "datamodule": datamodule}
