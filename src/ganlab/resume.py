"""Runs that can stop and go on exactly: randomness tied to the step, and a checkpoint when the run is told to stop.

What a resumed run needs and where it comes from:

- G, D, both optimizers, ``global_step``, the fixed noise, BatchNorm statistics: Lightning's checkpoint.
- The data position: ``EpochBatches.state_dict`` (the epoch and how many of its batches were used), which
  Lightning keeps because the train loader is a ``ResumableLoader``.
- Randomness (noise, dropout, gradient-penalty mixing): ``StepSeed`` below.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

log = logging.getLogger(__name__)


class StepSeed(L.Callback):
    """Before every generator update, seed torch's RNG from (seed, step).

    Saving and restoring the RNG state at a checkpoint is not enough: between the save and the next step a run
    may validate, start an epoch or build a DataLoader iterator, each of which draws from the global RNG, and a
    resumed run does not repeat those draws in the same order. Seeding from the step makes the noise and the
    dropout masks of step N the same whatever ran before it; the seed travels in the checkpoint.

    The rank is part of the seed: each DDP rank draws its own noise and dropout masks, so the ranks' fakes add
    up to a batch of world_size x B distinct images (one ``seed_everything`` alone gives every rank the same).
    """

    def __init__(self, seed: int):
        self.seed = seed

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        entropy = [self.seed, trainer.global_step, trainer.global_rank]
        torch.manual_seed(int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0]))

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict["seed"] != self.seed:
            log.info("Resuming with the checkpoint's seed %d (this run's seed is %d)", state_dict["seed"], self.seed)
        self.seed = state_dict["seed"]


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
    after D's update and before G's). Under DDP the ranks agree at every step, so the one rank that got the
    signal stops them all at the same step. A second Ctrl-C stops at once, without a checkpoint.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
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

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        signum = self.received or 0
        if trainer.world_size > 1:  # every rank learns of a signal any rank got
            signum = int(trainer.strategy.reduce(torch.tensor(signum, device=pl_module.device), reduce_op="max"))
        if not signum or self.saved is not None:
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


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be resumed from: missing, unreadable, or from another model config."""


def _model_settings(hparams: dict[str, Any], prefix: str = "model.") -> dict[str, Any]:
    """Flat ``model.*`` settings from a GAN's hyperparameters, as a user would type them."""
    flat = {}
    for key, value in hparams.items():
        if key in ("loss", "optimizer"):
            continue
        if isinstance(value, dict):
            flat |= _model_settings(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def check_resumable(ckpt_path: str | None, model: torch.nn.Module, output_dir: str | Path) -> None:
    """Fail with one line, before training, when ``ckpt_path`` cannot be resumed into ``model``.

    A checkpoint of another architecture would otherwise fail deep in ``load_state_dict`` with a list of
    mismatched tensors; this names the model settings that differ instead.
    """
    if ckpt_path in (None, "best", "hpc", "registry"):
        return
    path = Path(output_dir) / "checkpoints" / "last.ckpt" if ckpt_path == "last" else Path(ckpt_path)
    if ckpt_path == "last" and not path.exists():
        return  # Lightning starts from scratch with a warning: a first run under a "resume if possible" command
    if not path.is_file():
        raise CheckpointError(
            f"ckpt_path={ckpt_path}: no such checkpoint file; give the path of a .ckpt file "
            f"(outputs/runs/<run>/checkpoints/last.ckpt), or drop ckpt_path to start a new run"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        state, hparams = checkpoint["state_dict"], checkpoint.get("hyper_parameters", {})
    except Exception as err:  # truncated file, not a checkpoint at all
        raise CheckpointError(f"ckpt_path={ckpt_path}: not a readable Lightning checkpoint ({type(err).__name__}); use another checkpoint of the run, e.g. its step_*.ckpt") from None
    expected = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    found = {name: tuple(tensor.shape) for name, tensor in state.items()}
    if expected == found:
        return
    ours, theirs = _model_settings(dict(getattr(model, "hparams", {}))), _model_settings(hparams)
    keys = sorted(ours.keys() | theirs.keys(), key=lambda key: (not key.endswith("_target_"), key))  # architectures first
    differing = [f"{key}={theirs.get(key)!r} (here {ours.get(key)!r})" for key in keys if ours.get(key) != theirs.get(key)]
    detail = "; ".join(differing[:4]) if differing else "the same settings but other tensor shapes"
    raise CheckpointError(
        f"ckpt_path={ckpt_path} was trained with another model config: {detail}. Resume it with the model "
        f"settings it was trained with, or start a new run without ckpt_path"
    )
