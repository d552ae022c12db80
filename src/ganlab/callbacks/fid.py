"""FID and KID during training, against the validation split, logged as ``val/fid`` and ``val/kid``."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch

from ganlab.metrics.classifier import prepare_extractor
from ganlab.metrics.scores import GANScores, real_batches

log = logging.getLogger(__name__)


class FIDCallback(L.Callback):
    """Every ``every_n_epochs`` epochs, at the end of validation: ``num_samples`` images from G scored against the
    validation split (plus ``val/classifier_score`` and ``val/coverage_kl``).

    The samples come from the same noise at every evaluation, drawn from a forked RNG, so the curve shows G
    changing rather than sampling noise, and training's random stream is left as it was. Under DDP each rank
    scores its shard of the validation split and its slice of the same ``num_samples`` latents; torchmetrics
    gathers the states, so every rank logs the same values, and those of a single process (up to the at most
    world_size - 1 validation images the even shards leave out).
    A ModelCheckpoint with ``monitor: val/fid`` keeps the best one (conf/callbacks/default.yaml).
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
        self.scores: GANScores | None = None
        self.best: float | None = None  # lowest val/fid so far, logged as val/best_fid (kept across a resume)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        scores = self._scores(trainer, pl_module)
        scores.reset_fake()
        devices = [pl_module.device] if pl_module.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            # The same num_samples latents (and classes) on every rank, whatever the number of ranks; each rank
            # scores its own slice of them, and torchmetrics gathers the slices in rank order. So the scored set is
            # the one a single process would score.
            torch.manual_seed(self.seed)
            z = pl_module.sample_latent(self.num_samples)
            labels = pl_module.classes_in_turn(self.num_samples) if pl_module.conditional else None
            rank, world = trainer.global_rank, trainer.world_size
            start, stop = rank * self.num_samples // world, (rank + 1) * self.num_samples // world
            batch_size = self.metrics.get("batch_size", 500)
            for first in range(start, stop, batch_size):
                last = min(first + batch_size, stop)
                scores.update_fake(
                    pl_module.generate(z=z[first:last], labels=None if labels is None else labels[first:last])
                )
            # KID's subsets and the classifier score's splits are random: the same draws on every rank (after the
            # sync every rank holds the same features), and subset sizes from the global counts.
            torch.manual_seed(self.seed + 1)
            values = scores.compute()
        fid = float(values["fid"])
        self.best = fid if self.best is None else min(self.best, fid)
        pl_module.log_dict(
            {
                "val/fid": values["fid"],
                "val/best_fid": self.best,
                "val/kid": values["kid_mean"],
                "val/classifier_score": values["classifier_score"],
                "val/coverage_kl": values["coverage_kl"],
                # Fidelity and variety apart (Kynkäänniemi et al. 2019): a G that repeats a few good images per
                # class keeps a fair FID but loses recall.
                "val/precision": values["precision"],
                "val/recall": values["recall"],
            },
            sync_dist=False,  # already global, and the same on every rank: torchmetrics synced the states
        )

    def prepare(self, datamodule: L.LightningDataModule) -> None:
        """Before ``fit`` (``train`` calls it), on local rank 0: the data downloaded if need be, and the feature
        network found, or trained and cached, so that no rank trains one at its first validation while the others
        wait in a collective (which could outlast the process group's timeout). Ranks that Lightning's launcher
        starts come later, in ``fit``, and find it cached; ranks that an external launcher started alongside wait
        for the file in ``setup``."""
        if int(os.environ.get("LOCAL_RANK", 0)) == 0:
            datamodule.prepare_data()  # what fit would do first; setup then reads the real files, not a fallback
            prepare_extractor(
                datamodule,
                cache_dir=self.metrics.get("cache_dir"),
                train_if_missing=self.metrics.get("train_if_missing", True),
            )

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if (
            stage == "fit" and trainer.datamodule is not None
        ):  # after Lightning's prepare_data: waits on the file, no collective
            prepare_extractor(
                trainer.datamodule,
                cache_dir=self.metrics.get("cache_dir"),
                train_if_missing=self.metrics.get("train_if_missing", True),
                local_rank=trainer.local_rank,
            )

    def _scores(self, trainer: L.Trainer, pl_module: L.LightningModule) -> GANScores:
        """Built at the first evaluation (short runs never pay for it), with the real features computed once."""
        if self.scores is None:
            datamodule = trainer.datamodule
            scores = GANScores.for_data(datamodule, **self.metrics).to(pl_module.device)
            scores.add_real(real_batches(datamodule.val_dataloader(), datamodule, pl_module.device))
            log.info(
                "FID/KID against %d validation images with %s",
                scores.num_real * trainer.world_size,
                scores.extractor["fid_kid_features"],
            )
            self.scores = scores
        return self.scores

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = state_dict.get("best")

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if self.scores is not None:  # which feature network the run's val/fid was measured in (evaluate.py reads it)
            checkpoint["feature_extractor"] = self.scores.extractor
