"""The family's scores during training, against the validation split: ``val/fid`` and the rest."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import lightning as L

from ganlab.evaluation.base import Evaluator
from ganlab.metrics.classifier import prepare_extractor

log = logging.getLogger(__name__)


class FIDCallback(L.Callback):
    """Every ``every_n_epochs`` epochs, at the end of validation: the family's validation scores
    (``Evaluator.validation_metrics``): for a generator of noise, ``num_samples`` images scored against the
    validation split (``val/fid``, ``val/kid``, precision/recall, ``val/classifier_score``, ``val/coverage_kl``);
    for a translator, every validation image translated both ways (label preservation, FID, cycle error).

    Samples come from the same noise at every evaluation, drawn from a forked RNG, so the curve shows G changing
    rather than sampling noise, and training's random stream is left as it was. Under DDP every rank logs the
    same values: torchmetrics gathers the states. A ModelCheckpoint with ``monitor: val/fid`` keeps the best
    one (conf/callbacks/default.yaml).
    """

    def __init__(self, metrics: Mapping[str, Any], every_n_epochs: int = 1, num_samples: int = 1000, seed: int = 1234):
        if every_n_epochs < 1 or num_samples < 2:
            raise ValueError(
                f"callbacks.fid needs every_n_epochs >= 1 and num_samples >= 2, got {every_n_epochs} and {num_samples}"
            )
        self.metrics = dict(metrics)
        self.every_n_epochs = every_n_epochs
        self.num_samples = num_samples
        self.seed = seed
        self.evaluator: Evaluator | None = None  # built at the first evaluation (short runs never pay for it)
        self.best: float | None = None  # lowest val/fid so far, logged as val/best_fid (kept across a resume)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        if self.evaluator is None:
            self.evaluator = pl_module.evaluator(self.metrics)
        values = self.evaluator.validation_metrics(
            trainer.datamodule, self.num_samples, self.seed, trainer.global_rank, trainer.world_size
        )
        fid = float(values["val/fid"])
        self.best = fid if self.best is None else min(self.best, fid)
        # Already global, and the same on every rank: torchmetrics synced the states.
        pl_module.log_dict(values | {"val/best_fid": self.best}, sync_dist=False)

    def prepare(self, datamodule: L.LightningDataModule, model: L.LightningModule) -> None:
        """Before ``fit`` (``train`` calls it), on local rank 0: the data downloaded if need be, and the feature
        network found, or trained and cached, so that no rank trains one at its first validation while the others
        wait in a collective (which could outlast the process group's timeout). Ranks that Lightning's launcher
        starts come later, in ``fit``, and find it cached; ranks that an external launcher started alongside wait
        for the file in ``setup``."""
        if int(os.environ.get("LOCAL_RANK", 0)) == 0:
            datamodule.prepare_data()  # what fit would do first; setup then reads the real files, not a fallback
            for data in model.evaluator(self.metrics).scored_data(datamodule):
                prepare_extractor(
                    data,
                    cache_dir=self.metrics.get("cache_dir"),
                    train_if_missing=self.metrics.get("train_if_missing", True),
                )

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if (
            stage == "fit" and trainer.datamodule is not None
        ):  # after Lightning's prepare_data: waits on the file, no collective
            for data in pl_module.evaluator(self.metrics).scored_data(trainer.datamodule):
                prepare_extractor(
                    data,
                    cache_dir=self.metrics.get("cache_dir"),
                    train_if_missing=self.metrics.get("train_if_missing", True),
                    local_rank=trainer.local_rank,
                )

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = state_dict.get("best")

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        extractor = None if self.evaluator is None else self.evaluator.validation_extractor
        if extractor is not None:  # which feature network the run's val/fid was measured in
            checkpoint["feature_extractor"] = extractor
