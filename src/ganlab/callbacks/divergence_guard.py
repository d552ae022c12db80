"""Stop (or skip the update) when training produces a NaN or an infinity, keeping the last good checkpoint."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.trainer.states import TrainerFn
from torch.optim import Optimizer

from ganlab.callbacks.rank_agreement import agreed_flags, is_check_step

log = logging.getLogger(__name__)

ACTIONS = ("stop", "skip")
FINITE, INF, NAN = 0, 1, 2  # a tensor's state as a number, so that the worst one is the maximum (over ranks too)
STATES = {INF: "inf", NAN: "nan"}


class DivergenceError(RuntimeError):
    """A loss, gradient or weight became NaN or infinite. The message names the step, the quantity and the fix."""


def non_finite_code(tensors: list[torch.Tensor]) -> torch.Tensor:
    """FINITE, INF or NAN for a list of tensors, as a 0-d device tensor: no host sync. A NaN or inf anywhere makes a
    tensor's norm non-finite (one fused kernel for all of them); a norm that overflows on huge but finite values
    reads as INF here, and ``_first_non_finite`` then finds no culprit."""
    norms = torch.stack(torch._foreach_norm([tensor.detach() for tensor in tensors]))
    return torch.where(torch.isnan(norms).any(), NAN, torch.where(torch.isinf(norms).any(), INF, FINITE))


def _first_non_finite(named_tensors) -> tuple[str, torch.Tensor] | None:
    """The first really non-finite tensor (the slow path, taken once something was found)."""
    return next(
        ((name, tensor) for name, tensor in named_tensors if tensor is not None and not torch.isfinite(tensor).all()),
        None,
    )


def _describe(tensor: torch.Tensor) -> str:
    return "nan" if torch.isnan(tensor).any() else "inf"


class DivergenceGuard(L.Callback):
    """Stop (or skip the update) when training produces a non-finite value, on every DDP rank alike.

    - Before every optimizer step (D's and G's), the weights and that optimizer's gradients: one fused check and
      one host sync. ``action="stop"`` raises ``DivergenceError`` before the bad update is applied;
      ``action="skip"`` drops the non-finite gradient (that optimizer's step changes nothing) and stops only after
      ``max_consecutive_skips`` in a row, or when a weight itself is not finite. Under DDP this decision is the
      same on every rank without any communication: the gradients have just been all-reduced (a NaN on one
      rank's shard is a NaN on all of them) and the weights are replicas.
    - Each rank's own losses: accumulated on the device (no host sync) and agreed over all ranks every
      ``check_every_n_steps`` generator updates, at the last one, and before every checkpoint is written, in the
      one all-reduce of ``rank_agreement`` (shared with ``checkpoint_on_signal``). So every rank stops at the
      same step with the same message, and no checkpoint written after a non-finite loss or weight exists: the
      last good one stays.

    With mixed precision a non-finite gradient is the grad scaler's business (it skips the step and lowers the
    scale), so gradients are then left alone, and the weights are checked with the losses.
    """

    def __init__(self, action: str = "stop", max_consecutive_skips: int = 10, check_every_n_steps: int = 10):
        if action not in ACTIONS:
            raise ValueError(f"callbacks.divergence_guard.action must be one of {ACTIONS}, got {action!r}")
        if check_every_n_steps < 1:
            raise ValueError(f"callbacks.divergence_guard.check_every_n_steps must be >= 1, got {check_every_n_steps}")
        self.action = action
        self.max_consecutive_skips = max_consecutive_skips
        self.check_every_n_steps = check_every_n_steps
        self.skipped = 0  # skipped updates in this run
        self._consecutive_skips = 0
        self._skipped_this_step = False
        self._losses: dict[str, torch.Tensor] = {}  # the worst state of each loss since the last agreement
        self._loss_steps: dict[str, int] = {}

    def _stop(self, trainer: L.Trainer, what: str, step: int | None = None) -> None:
        last = (
            Path(trainer.checkpoint_callback.dirpath) / "last.ckpt"
            if getattr(trainer.checkpoint_callback, "dirpath", None)
            else None
        )
        kept = (
            f"the last good checkpoint is {last}"
            if last is not None and last.exists()
            else "no checkpoint was saved before it"
        )
        raise DivergenceError(
            f"training diverged at step {trainer.global_step + 1 if step is None else step}: {what}; {kept}. Lower the learning "
            f"rates (optimizer.*.lr), change the loss, or set callbacks.divergence_guard.action=skip to skip such updates"
        )

    # ---- before each optimizer step: weights and gradients, the same on every rank -----------------------
    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Optimizer) -> None:
        if getattr(trainer.precision_plugin, "scaler", None) is not None:
            return  # the scaler checks the gradients; the weights are checked with the losses
        params = [p for group in optimizer.param_groups for p in group["params"]]
        grads = [p.grad for p in params if p.grad is not None]
        weights = list(pl_module.parameters())
        codes = torch.stack(
            [
                non_finite_code(weights),
                non_finite_code(grads) if grads else torch.zeros((), dtype=torch.long, device=weights[0].device),
            ]
        )
        weight_code, grad_code = codes.tolist()  # the one host sync of this optimizer step
        if weight_code != FINITE:
            bad_weight = _first_non_finite(pl_module.named_parameters())
            if bad_weight is not None:
                self._stop(trainer, f"weight {bad_weight[0]} is {_describe(bad_weight[1])}")
        if grad_code == FINITE:
            return
        names = {id(p): name for name, p in pl_module.named_parameters()}
        bad_grad = _first_non_finite((names.get(id(p), "?"), p.grad) for p in params)
        if bad_grad is None:
            return  # a norm overflowed on finite values
        what = f"gradient of {bad_grad[0]} is {_describe(bad_grad[1])}"
        if self.action == "stop":
            self._stop(trainer, what)
        self._consecutive_skips += 1
        self._skipped_this_step = True
        self.skipped += 1
        if self._consecutive_skips > self.max_consecutive_skips:
            self._stop(trainer, f"{what}, {self._consecutive_skips} updates in a row")
        log.warning("step %d: %s; update skipped", trainer.global_step + 1, what)
        for p in params:
            p.grad = None  # torch optimizers leave parameters without a gradient untouched (momentum included)

    # ---- after each generator update: this rank's losses, agreed every N steps ---------------------------
    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not self._skipped_this_step:
            self._consecutive_skips = 0
        self._skipped_this_step = False
        # `outputs`: this step's values from GAN.training_step (the logged ones are only every n-th step's)
        for name, value in (outputs or {}).items():
            if name.startswith("loss/"):
                code = non_finite_code([value])
                self._losses[name] = code if name not in self._losses else torch.maximum(self._losses[name], code)
        if is_check_step(trainer, self.check_every_n_steps):
            self._act_on_agreement(trainer, pl_module)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if (
            trainer.state.fn == TrainerFn.FITTING
        ):  # every rank saves at the same steps: raising here keeps the bad one out
            self._act_on_agreement(trainer, pl_module)

    def local_flags(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        """For ``rank_agreement``: the worst state of each loss since the last agreement, and of the weights."""
        weights = list(pl_module.parameters())
        return {
            "weights": non_finite_code(weights) if weights else 0,
            **{f"loss:{name}": code for name, code in sorted(self._losses.items())},
        }

    def _act_on_agreement(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        flags = agreed_flags(trainer, pl_module).get(self, {})
        self._losses = {}
        step = trainer.global_step
        if flags.get("weights", FINITE) != FINITE:  # e.g. an update too large for float32: skipping cannot undo it
            bad_weight = _first_non_finite(pl_module.named_parameters())
            what = f"weight {bad_weight[0]} is {_describe(bad_weight[1])}" if bad_weight else "a weight is not finite"
            self._stop(trainer, what, step)
        bad = [
            (name.removeprefix("loss:"), int(code))
            for name, code in flags.items()
            if name.startswith("loss:") and code != FINITE
        ]
        if bad and self.action == "stop":
            name, code = bad[0]
            ranks = f" on a rank of {trainer.world_size}" if trainer.world_size > 1 else ""
            self._stop(
                trainer, f"{name} is {STATES[code]}{ranks} (checked every {self.check_every_n_steps} steps)", step
            )
