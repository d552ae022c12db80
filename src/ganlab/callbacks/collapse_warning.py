"""Warn when the discriminator wins for good, or when the samples cover few classes (mode collapse)."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L

log = logging.getLogger(__name__)


class CollapseWarning(L.Callback):
    """Warn when the discriminator wins for ``window`` generator updates in a row (D(x) above ``1 - margin`` and
    D(G(z)) below ``margin``: G then gets almost no gradient), or when the samples' classes collapse: the
    logged ``coverage_metric`` (``val/coverage_kl``, KL of the sampled class histogram from uniform, from the FID
    callback) above ``max_coverage_kl`` at ``coverage_window`` validations in a row.

    The D(x) test is only for objectives whose D(x) is a probability (gan, nsgan): the raw scores of the other
    objectives have no fixed scale.
    """

    def __init__(self, window: int = 200, margin: float = 0.05, coverage_metric: str = "val/coverage_kl",
                 max_coverage_kl: float = 1.0, coverage_window: int = 2):
        self.window, self.margin = window, margin
        self.coverage_metric, self.max_coverage_kl, self.coverage_window = coverage_metric, max_coverage_kl, coverage_window
        self.streak = 0
        self.coverage_streak = 0
        self.warned_at: int | None = None  # step of the discriminator warning
        self.coverage_warned_at: int | None = None

    def _warn(self, trainer: L.Trainer, message: str, series: str) -> None:
        log.warning(message)
        if trainer.logger is not None:
            trainer.logger.log_metrics({f"warning/{series}": 1.0}, step=trainer.global_step)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = getattr(pl_module, "loss", None)
        metrics = outputs or {}  # this step's values from GAN.training_step
        if not getattr(loss, "probabilistic", False) or "D(x)" not in metrics or "D(G(z))" not in metrics:
            return
        real, fake = float(metrics["D(x)"]), float(metrics["D(G(z))"])
        self.streak = self.streak + 1 if real > 1 - self.margin and fake < self.margin else 0
        if self.streak == self.window:
            self.warned_at = trainer.global_step
            self._warn(trainer, (
                f"step {trainer.global_step}: D(x)={real:.3f} and D(G(z))={fake:.3f} for {self.window} generator "
                f"updates in a row: the discriminator wins and G gets almost no gradient (mode collapse or a "
                f"stalled G). Try loss=nsgan or loss=lsgan, a lower optimizer.discriminator.lr, or more dropout in D"
            ), "collapse")

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.coverage_metric)
        if trainer.sanity_checking or value is None:
            return
        self.coverage_streak = self.coverage_streak + 1 if float(value) > self.max_coverage_kl else 0
        if self.coverage_streak == self.coverage_window:
            self.coverage_warned_at = trainer.global_step
            self._warn(trainer, (
                f"step {trainer.global_step}: {self.coverage_metric}={float(value):.2f} above {self.max_coverage_kl} at "
                f"{self.coverage_window} validations in a row: the samples cover few classes (mode collapse)"
            ), "class_collapse")

    def state_dict(self) -> dict[str, Any]:
        return {"streak": self.streak, "coverage_streak": self.coverage_streak}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.streak = state_dict["streak"]
        self.coverage_streak = state_dict.get("coverage_streak", 0)
