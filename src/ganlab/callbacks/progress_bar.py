"""A progress bar in generator updates: ``step n/max_steps``, rate, elapsed and remaining time, the losses and
the latest ``val/fid``. Lightning's bars count batches of an epoch (``Epoch 15/-2`` when max_epochs is -1)."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks.progress.progress_bar import ProgressBar
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class StepProgressBar(ProgressBar):
    """One rich bar for the whole run, in generator updates (``trainer.global_step`` of ``trainer.max_steps``).

    Its text: the rate in updates/s, elapsed and remaining time, ``d`` and ``g`` (the losses the module logs to
    the bar, every ``trainer.log_every_n_steps`` updates), ``val/fid`` after each validation, and any other value
    logged with ``prog_bar=True`` (``val/accuracy``). Validation shows as a word on the same line, not as bars.
    ``refresh_per_second`` bounds the redraws; a non-terminal output (a log file, a batch job) gets the final
    line only.
    """

    def __init__(self, refresh_per_second: int = 4):
        super().__init__()
        self.refresh_per_second = refresh_per_second
        self._enabled = True
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def is_enabled(self) -> bool:
        return self._enabled and self.trainer.is_global_zero

    def print(self, *args: Any, **kwargs: Any) -> None:
        if self._progress is not None:
            self._progress.console.print(*args, **kwargs)
        else:
            print(*args, **kwargs)

    def _total(self, trainer: L.Trainer) -> int | None:
        return trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.is_enabled:
            return
        self._progress = Progress(
            TextColumn(
                "step {task.completed:,.0f}/{task.total:,.0f}" if self._total(trainer) else "step {task.completed:,.0f}"
            ),
            BarColumn(bar_width=20),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(compact=True),
            TextColumn("{task.fields[metrics]}"),
            console=Console(),
            refresh_per_second=self.refresh_per_second,
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(
            "train", total=self._total(trainer), completed=trainer.global_step, rate="", metrics=""
        )

    def _text(self, trainer: L.Trainer, pl_module: L.LightningModule, state: str = "") -> str:
        shown = {}
        for label, name in (("d", "loss/d"), ("g", "loss/g"), ("val/fid", "val/fid")):  # read only when redrawn
            value = trainer.callback_metrics.get(name)
            if value is not None:
                shown[label] = float(value)
        shown |= {name: value for name, value in self.get_metrics(trainer, pl_module).items() if name != "v_num"}
        parts = [
            f"{name} {value:.3f}" if isinstance(value, float) else f"{name} {value}" for name, value in shown.items()
        ]
        return "  ".join(([state] if state else []) + parts)

    def _update(self, trainer: L.Trainer, pl_module: L.LightningModule, state: str = "") -> None:
        if self._progress is None or self._task is None:
            return
        speed = self._progress.tasks[0].speed
        self._progress.update(
            self._task,
            completed=trainer.global_step,
            rate=f"{speed:.1f} it/s" if speed else "",
            metrics=self._text(trainer, pl_module, state),
        )

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=trainer.global_step)  # cheap: no text every step
            if trainer.global_step % max(trainer.log_every_n_steps, 1) == 0:
                self._update(trainer, pl_module)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._update(trainer, pl_module, "validating")

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._update(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._update(trainer, pl_module)
        self._stop()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._stop()

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None
