"""Translation scores during training (``experiment=cyclegan``): label preservation both ways, FID against the
real target domain and cycle error on the validation splits, beside the untranslated baseline."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import lightning as L

from ganlab.metrics.translation import TranslationScores

log = logging.getLogger(__name__)


class TranslationMetrics(L.Callback):
    """Every ``every_n_epochs`` epochs, at the end of validation: every validation image of each domain translated
    (``pl_module.translate``), scored by ``ganlab.metrics.translation``, and logged as ``val/<name>``.
    ``val/fid`` is FID of A -> B, so the best-FID checkpoint keeps the best translator of UCI digits into MNIST."""

    def __init__(self, metrics: Mapping[str, Any], every_n_epochs: int = 1):
        self.metrics = dict(metrics)
        self.every_n_epochs = every_n_epochs
        self.scores: TranslationScores | None = None

    def _batches(self, trainer: L.Trainer, pl_module: L.LightningModule):
        datamodule = trainer.datamodule
        for batch in datamodule.val_dataloader():
            yield datamodule.on_after_batch_transfer(tuple(part.to(pl_module.device) for part in batch), 0)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        if self.scores is None:  # built at the first evaluation, with the real features computed once
            self.scores = TranslationScores.for_data(trainer.datamodule, **self.metrics).to(pl_module.device)
            self.scores.add_real(self._batches(trainer, pl_module))
            log.info("Translation scores against %s real validation images (A->B, B->A)", self.scores.num_real)
        self.scores.reset_translated()
        self.scores.add_translated(
            lambda a: pl_module.translate(a, "ab"),
            lambda b: pl_module.translate(b, "ba"),
            self._batches(trainer, pl_module),
        )
        values = self.scores.compute()
        pl_module.log_dict(
            {f"val/{name}": value for name, value in values.items()} | {"val/fid": values["fid_ab"]}, sync_dist=False
        )

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if self.scores is not None:
            checkpoint["feature_extractor"] = self.scores.extractors
