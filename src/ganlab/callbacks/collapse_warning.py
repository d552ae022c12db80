"""Warn when the discriminator wins for good, or when the samples cover few classes (mode collapse)."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch

from ganlab.callbacks.rank_agreement import is_check_step

log = logging.getLogger(__name__)


class CollapseWarning(L.Callback):
    """Warn when the discriminator wins for ``window`` generator updates in a row (D(x) above ``1 - margin`` and
    D(G(z)) below ``margin``: G then gets almost no gradient), or when the samples' classes collapse: the
    logged ``coverage_metric`` (``val/coverage_kl``, KL of the sampled class histogram from uniform, from the FID
    callback) above ``max_coverage_kl`` at ``coverage_window`` validations in a row.

    Every step's D(x) and D(G(z)) count in the streak, on the device; the streak is read back (one host sync)
    every ``check_every_n_steps`` steps, so the warning comes at the first check after the streak reached ``window``.

    The D(x) test is only for objectives whose D(x) is a probability (gan, nsgan): the raw scores of the other
    objectives have no fixed scale.
    """

    def __init__(
        self,
        window: int = 200,
        margin: float = 0.05,
        coverage_metric: str = "val/coverage_kl",
        max_coverage_kl: float = 1.0,
        coverage_window: int = 2,
        check_every_n_steps: int = 10,
    ):
        if check_every_n_steps < 1:
            raise ValueError(f"callbacks.collapse_warning.check_every_n_steps must be >= 1, got {check_every_n_steps}")
        self.window, self.margin = window, margin
        self.coverage_metric, self.max_coverage_kl, self.coverage_window = (
            coverage_metric,
            max_coverage_kl,
            coverage_window,
        )
        self.check_every_n_steps = check_every_n_steps
        self.streak: int | torch.Tensor = 0  # a device tensor while training: counted without a host sync
        self._crossed: torch.Tensor | None = None  # whether the streak reached `window` since the last check
        self.coverage_streak = 0
        self.warned_at: int | None = None  # step of the discriminator warning
        self.coverage_warned_at: int | None = None

    def _warn(self, trainer: L.Trainer, message: str, series: str) -> None:
        log.warning(message)
        if trainer.logger is not None:
            trainer.logger.log_metrics({f"warning/{series}": 1.0}, step=trainer.global_step)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = getattr(pl_module, "loss", None)
        metrics = outputs or {}  # this step's values from GAN.training_step
        if not getattr(loss, "probabilistic", False) or "D(x)" not in metrics or "D(G(z))" not in metrics:
            return
        # Every step's D(x) counts in the streak, on the device; it is read every check_every_n_steps steps.
        real, fake = metrics["D(x)"].detach(), metrics["D(G(z))"].detach()
        wins = (real > 1 - self.margin) & (fake < self.margin)
        self.streak = (torch.as_tensor(self.streak, device=real.device) + 1) * wins
        crossed = self.streak == self.window
        self._crossed = crossed if self._crossed is None else self._crossed | crossed
        if not is_check_step(trainer, self.check_every_n_steps):
            return
        reached, self._crossed = bool(self._crossed), None  # the one host sync, every N steps
        if reached:
            self.warned_at = trainer.global_step
            self._warn(
                trainer,
                (
                    f"step {trainer.global_step}: D(x)={float(real):.3f} and D(G(z))={float(fake):.3f}; D won {self.window} "
                    f"generator updates in a row: the discriminator wins and G gets almost no gradient (mode collapse or a "
                    f"stalled G). Try loss=nsgan or loss=lsgan, a lower optimizer.discriminator.lr, or more dropout in D"
                ),
                "collapse",
            )

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.coverage_metric)
        if trainer.sanity_checking or value is None:
            return
        self.coverage_streak = self.coverage_streak + 1 if float(value) > self.max_coverage_kl else 0
        if self.coverage_streak == self.coverage_window:
            self.coverage_warned_at = trainer.global_step
            self._warn(
                trainer,
                (
                    f"step {trainer.global_step}: {self.coverage_metric}={float(value):.2f} above {self.max_coverage_kl} at "
                    f"{self.coverage_window} validations in a row: the samples cover few classes (mode collapse)"
                ),
                "class_collapse",
            )

    def state_dict(self) -> dict[str, Any]:
        return {"streak": int(self.streak), "coverage_streak": self.coverage_streak}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.streak = state_dict["streak"]
        self.coverage_streak = state_dict.get("coverage_streak", 0)
