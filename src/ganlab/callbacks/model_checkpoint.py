"""Lightning's ``ModelCheckpoint``, with ``last.ckpt`` written at the run's last update whatever the interval."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint as LightningModelCheckpoint


class ModelCheckpoint(LightningModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` (every option as there), and with ``save_last`` the last update's
    checkpoint in ``last.ckpt`` also when ``trainer.max_steps`` is not a multiple of ``every_n_train_steps``.

    Lightning 2.6 writes ``last.ckpt`` at the end of training only if no ``last.ckpt`` was written before in the run:
    ``trainer.max_steps=1234`` with checkpoints every 500 updates ended with the weights of update 1,000 in
    ``last.ckpt``, and a run shorter than the interval wrote it in ``on_train_end``, after ``callbacks.ema`` had
    put the averaged weights in, so that training on from it started from the average. Written here, in the last
    update's ``on_train_batch_end``, it is the checkpoint a run stopped by the interval at that update would
    write: resuming from it to a longer budget is exact. The class keeps Lightning's name, so the callback state
    of checkpoints written with Lightning's class loads.
    """

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        last_update = 0 < trainer.max_steps <= trainer.global_step
        # _should_skip_saving_checkpoint: already saved at this step, sanity check, not fitting
        if self.save_last and last_update and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
