"""SIGTERM or Ctrl-C: finish the step, save ``checkpoints/last.ckpt``, exit 128 + signal."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from ganlab.callbacks.rank_agreement import agreed_flags, is_check_step

log = logging.getLogger(__name__)


class Interrupted(Exception):
    """Training stopped on SIGTERM or SIGINT after saving a checkpoint to resume from."""

    def __init__(self, signum: int, step: int, checkpoint: Path):
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        super().__init__(
            f"stopped by {signal.Signals(signum).name} after step {step}; checkpoint saved to {checkpoint}. "
            f"Resume with: python train.py ckpt_path={checkpoint} (plus the overrides of this run)"
        )


class CheckpointOnSignal(L.Callback):
    """On SIGTERM (a scheduler's preemption, ``kill``) or SIGINT (Ctrl-C): finish the current generator update,
    save ``last.ckpt``, stop, and exit with 128 + the signal number.

    The signal only sets a flag; the checkpoint is written between two updates, where the state is whole (never
    after D's update and before G's). A single process looks at the flag after every update (a Python int: no
    host sync). Under DDP the ranks agree on it every ``check_every_n_steps`` updates, in the one all-reduce of
    ``rank_agreement`` that the divergence guard shares, so the one rank that got the signal stops them all at
    the same step (at most ``check_every_n_steps - 1`` updates later). A second Ctrl-C stops at once, without a
    checkpoint.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, check_every_n_steps: int = 10) -> None:
        if check_every_n_steps < 1:
            raise ValueError(
                f"callbacks.checkpoint_on_signal.check_every_n_steps must be >= 1, got {check_every_n_steps}"
            )
        self.check_every_n_steps = check_every_n_steps
        self.received: int | None = None
        self.saved: Path | None = None
        self._previous_handlers: dict[int, Any] = {}

    def _note_signal(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGINT and self.received == signal.SIGINT:
            raise KeyboardInterrupt
        log.warning("Received %s: saving a checkpoint after the current step", signal.Signals(signum).name)
        self.received = signum

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # Python only lets the main thread set handlers
        for signum in self.SIGNALS:  # replaces Lightning's SIGTERM handler, which stops without saving
            self._previous_handlers[signum] = signal.signal(signum, self._note_signal)

    def local_flags(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, int]:
        """For ``rank_agreement``: the signal this rank got (0: none)."""
        return {"signal": self.received or 0}

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.saved is not None:
            return
        if trainer.world_size > 1:  # every rank learns of a signal any rank got, at the same step
            if not is_check_step(trainer, self.check_every_n_steps):
                return
            signum = int(agreed_flags(trainer, pl_module).get(self, {}).get("signal", 0))
        else:
            signum = self.received or 0
        if not signum:
            return
        self.received = signum
        self.saved = self._last_checkpoint_path(trainer)
        trainer.save_checkpoint(self.saved)
        trainer.should_stop = True  # the loop logs this step's metrics, then ends; on_train_end raises

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore_handlers()
        if self.saved is not None:
            raise Interrupted(self.received, trainer.global_step, self.saved)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._restore_handlers()

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers = {}

    @staticmethod
    def _last_checkpoint_path(trainer: L.Trainer) -> Path:
        """Where ModelCheckpoint keeps ``last.ckpt``, so that ``ckpt_path=last`` finds this one."""
        checkpoint = trainer.checkpoint_callback
        if isinstance(checkpoint, ModelCheckpoint) and checkpoint.dirpath is not None:
            return Path(checkpoint.dirpath) / f"{checkpoint.CHECKPOINT_NAME_LAST}{checkpoint.FILE_EXTENSION}"
        return Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt"
