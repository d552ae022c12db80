"""Sample grids: what the generator makes for a fixed noise batch, as PNGs and in TensorBoard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from torchvision.utils import make_grid, save_image


class SampleGrid(L.Callback):
    """At the end of every ``every_n_epochs`` epochs (and of training), G's images for the module's fixed noise:
    a PNG under ``<run dir>/samples/`` for any logger, and an image in TensorBoard when it is a logger."""

    def __init__(self, every_n_epochs: int = 1, nrow: int = 8):
        self.every_n_epochs = every_n_epochs
        self.nrow = nrow
        self._last_logged_step = -1

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self.log_grid(trainer, pl_module)  # once a step: a no-op after the validation's grid

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Drawn here when there is a validation: callbacks.ema has swapped the averaged weights in for it.
        if not trainer.sanity_checking and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self.log_grid(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.log_grid(trainer, pl_module)  # runs that stop on max_steps mid-epoch still get their final grid

    def log_grid(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        step = trainer.global_step
        if not trainer.is_global_zero or step == self._last_logged_step:
            return
        self._last_logged_step = step
        images = pl_module.sample_grid_images()  # (N, C, H, W) in [-1, 1]
        nrow = pl_module.grid_nrow or self.nrow  # conditional models: one row per class
        grid = make_grid(images, nrow=nrow, normalize=True, value_range=(-1, 1))  # (3, H', W') in [0, 1]
        samples_dir = Path(trainer.default_root_dir) / "samples"
        samples_dir.mkdir(parents=True, exist_ok=True)
        save_image(grid, samples_dir / f"step_{step:07d}.png")
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("samples", grid, global_step=step)
