"""TensorBoard's HPARAMS tab: each run's defining hyperparameters (a flat, readable selection of the config) with
its metrics, so that the jobs of ``python train.py -m ...`` line up in one table and one parallel-coordinates view.

TensorBoard's hparams plugin reads, per run directory, a session-start summary (the hyperparameter values), an
experiment summary (the hyperparameter and metric names) and, for each metric, the last value of the scalar tag
of that name in the same run. ``log_hparams`` writes the summaries once at the start; the metrics are the
ordinary scalars (``val/fid``, ``val/best_fid``, ...) logged as the run goes, so the table is always current.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from ganlab.callbacks.fid import FIDCallback


def metric_names(model: L.LightningModule) -> list[str]:
    """The family's ``val/*`` scores (its evaluator's) and the model's own headline measure, if any."""
    headline = model.headline_metric
    return [*model.evaluator().metric_names, *([headline] if headline else [])]


def _choice(cfg: DictConfig, group: str, fallback: str) -> str:
    """The option chosen for a config group (``model=dcgan`` -> dcgan), from Hydra when it runs."""
    try:
        from hydra.core.hydra_config import HydraConfig

        choice = HydraConfig.get().runtime.choices.get(group)
        if choice:
            return str(choice)
    except (ValueError, AttributeError):  # composed outside @hydra.main (tests, bench)
        pass
    return fallback


def _overrides() -> str:
    """The command line's overrides of this job, sorted (what differs between the jobs of a sweep)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        task = HydraConfig.get().overrides.task
    except (ValueError, AttributeError):
        return ""
    return " ".join(sorted(str(o) for o in task if not str(o).startswith(("hydra.", "paths."))))


def _short(target: str) -> str:
    return target.rsplit(".", 1)[-1]


def run_hparams(cfg: DictConfig) -> dict[str, Any]:
    """The hyperparameters that define a run, flat, with readable names and scalar values."""
    opt, data, trainer = cfg.optimizer, cfg.data, cfg.trainer
    callbacks = cfg.get("callbacks") or {}
    params: dict[str, Any] = {
        "model": _choice(cfg, "model", _short(cfg.model._target_)),
        "loss": _choice(cfg, "loss", _short(cfg.loss._target_)),
        "data": _choice(cfg, "data", _short(data._target_)),
        "optimizer": _choice(cfg, "optimizer", _short(opt.generator._target_)),
        "experiment": _choice(cfg, "experiment", "none"),
        "lr_g": float(opt.generator.lr),
        "lr_d": float(opt.discriminator.lr),
        "betas_g": ",".join(str(b) for b in opt.generator.get("betas", [])) or "-",
        "betas_d": ",".join(str(b) for b in opt.discriminator.get("betas", [])) or "-",
        "batch_size": int(data.batch_size),
        "discriminator_steps": int(cfg.loss.get("discriminator_steps", 1)),
        "latent_dim": int(cfg.model.get("latent_dim", 0)),
        "prior": str(cfg.model.get("prior", "-")),
        "max_steps": int(trainer.max_steps),
        "seed": -1 if cfg.get("seed") is None else int(cfg.seed),
        "ema": bool(callbacks.get("ema")),
        "ema_decay": float(callbacks.ema.decay) if callbacks.get("ema") else 0.0,
        "ema_rampup": float(callbacks.ema.get("half_life_rampup") or 0.0) if callbacks.get("ema") else 0.0,
        "labels_per_class": int(data.get("labels_per_class") or 0),
        "precision": str(trainer.get("precision", "32-true")),
        "overrides": _overrides() or "-",
    }
    return params


def log_hparams(loggers: list[Any], cfg: DictConfig, model: L.LightningModule) -> None:
    """Write the hparams summaries (experiment with metric names, session start) to every TensorBoard logger;
    the other loggers get the whole resolved config (CSV: hparams.yaml)."""
    from torch.utils.tensorboard.summary import hparams

    full = OmegaConf.to_container(cfg, resolve=True)
    params = run_hparams(cfg)
    names = metric_names(model)
    for logger in loggers:
        logger.log_hyperparams(full)  # TensorBoard: hparams.yaml only (default_hp_metric: false writes no summary)
        if isinstance(logger, TensorBoardLogger):
            writer = getattr(logger.experiment, "_get_file_writer", lambda: None)()
            if writer is None:  # DDP ranks other than 0 hold a dummy experiment
                continue
            for summary in hparams(params, {name: 0.0 for name in names}):  # values unused: only the names count
                writer.add_summary(summary)
            writer.flush()


def best_fid(trainer: L.Trainer) -> float | None:
    """The lowest val/fid of the run so far (the FID callback keeps it across a resume)."""
    for callback in trainer.callbacks:
        if isinstance(callback, FIDCallback) and callback.best is not None:
            return callback.best
    value = trainer.callback_metrics.get("val/best_fid")
    return None if value is None else float(value)
