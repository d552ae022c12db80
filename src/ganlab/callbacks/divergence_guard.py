"""Stop (or skip the update) when training produces a NaN or an infinity, keeping the last good checkpoint."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.optim import Optimizer

log = logging.getLogger(__name__)

ACTIONS = ("stop", "skip")


class DivergenceError(RuntimeError):
    """A loss, gradient or weight became NaN or infinite. The message names the step, the quantity and the fix."""


def _first_non_finite(named_tensors) -> tuple[str, torch.Tensor] | None:
    named = [(name, tensor.detach()) for name, tensor in named_tensors if tensor is not None]
    if not named:
        return None
    # Fast path, run at every optimizer step: a NaN or inf anywhere makes a tensor's norm non-finite. One fused
    # kernel and one device sync (per-tensor isfinite calls cost 3-160 ms per step for DCGAN on 2 busy cores).
    norms = torch._foreach_norm([tensor for _, tensor in named])
    if torch.isfinite(torch.stack(norms)).all():
        return None
    # A norm can also overflow on huge but finite values: only a really non-finite element counts.
    return next(((name, tensor) for name, tensor in named if not torch.isfinite(tensor).all()), None)


def _describe(tensor: torch.Tensor) -> str:
    return "nan" if torch.isnan(tensor).any() else "inf"


class DivergenceGuard(L.Callback):
    """Stop (or skip the update) when training produces a non-finite value.

    Before every optimizer step (D's and G's), the weights and that optimizer's gradients are checked; after
    every generator update, the logged losses. ``action="stop"`` raises ``DivergenceError`` before the bad update
    is applied, so no checkpoint with NaN weights is ever written (this callback runs before ModelCheckpoint) and
    the last good one stays. ``action="skip"`` drops a non-finite gradient (that optimizer's step changes nothing)
    and stops only after ``max_consecutive_skips`` in a row, or when a weight itself is not finite.

    With mixed precision a non-finite gradient is the grad scaler's business (it skips the step and lowers the
    scale), so gradients are then left alone; weights and losses are still checked.
    """

    def __init__(self, action: str = "stop", max_consecutive_skips: int = 10):
        if action not in ACTIONS:
            raise ValueError(f"callbacks.divergence_guard.action must be one of {ACTIONS}, got {action!r}")
        self.action = action
        self.max_consecutive_skips = max_consecutive_skips
        self.skipped = 0  # skipped updates in this run
        self._consecutive_skips = 0

    def _stop(self, trainer: L.Trainer, what: str) -> None:
        last = Path(trainer.checkpoint_callback.dirpath) / "last.ckpt" if getattr(trainer.checkpoint_callback, "dirpath", None) else None
        kept = f"the last good checkpoint is {last}" if last is not None and last.exists() else "no checkpoint was saved before it"
        raise DivergenceError(
            f"training diverged at step {trainer.global_step + 1}: {what}; {kept}. Lower the learning rates "
            f"(optimizer.*.lr), change the loss, or set callbacks.divergence_guard.action=skip to skip such updates"
        )

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Optimizer) -> None:
        bad_weight = _first_non_finite(pl_module.named_parameters())
        if bad_weight is not None:
            self._stop(trainer, f"weight {bad_weight[0]} is {_describe(bad_weight[1])}")
        if getattr(trainer.precision_plugin, "scaler", None) is not None:
            return
        names = {id(p): name for name, p in pl_module.named_parameters()}
        params = [p for group in optimizer.param_groups for p in group["params"]]
        bad_grad = _first_non_finite((names.get(id(p), "?"), p.grad) for p in params)
        if bad_grad is None:
            return
        what = f"gradient of {bad_grad[0]} is {_describe(bad_grad[1])}"
        if self.action == "stop":
            self._stop(trainer, what)
        self._consecutive_skips += 1
        self.skipped += 1
        if self._consecutive_skips > self.max_consecutive_skips:
            self._stop(trainer, f"{what}, {self._consecutive_skips} updates in a row")
        log.warning("step %d: %s; update skipped", trainer.global_step + 1, what)
        for p in params:
            p.grad = None  # torch optimizers leave parameters without a gradient untouched (momentum included)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        # `outputs`: this step's values from GAN.training_step (the logged ones are only every n-th step's)
        losses = {name: value for name, value in (outputs or {}).items() if name.startswith("loss/")}
        bad_loss = _first_non_finite(losses.items())
        if bad_loss is not None and self.action == "stop":
            raise DivergenceError(
                f"training diverged at step {trainer.global_step}: {bad_loss[0]} is {_describe(bad_loss[1])}; "
                f"lower the learning rates (optimizer.*.lr) or change the loss"
            )
        if bad_loss is None:
            self._consecutive_skips = 0
        bad_weight = _first_non_finite(pl_module.named_parameters())
        if bad_weight is not None:  # e.g. an update too large for float32: skipping cannot undo it
            self._stop(trainer, f"weight {bad_weight[0]} is {_describe(bad_weight[1])}")
