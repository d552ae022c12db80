"""Stop (or skip the update) when training produces a NaN or an infinity, keeping the last good checkpoint."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.trainer.states import TrainerFn
from torch.optim import Optimizer

from ganlab.callbacks.rank_agreement import agreed_flags, forget_agreement, is_check_step

log = logging.getLogger(__name__)

ACTIONS = ("stop", "skip")
FINITE, INF, NAN = 0, 1, 2  # a tensor's state as a number, so that the worst one is the maximum (over ranks too)
STATES = {INF: "inf", NAN: "nan"}


class DivergenceError(RuntimeError):
    """A loss, gradient or weight became NaN or infinite. The message names the step, the quantity and the fix."""


def norms(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Each tensor's norm, one device tensor (one fused kernel; no host sync). A NaN or inf anywhere in a tensor
    makes its norm non-finite; a norm that overflows on huge but finite values reads as inf, and
    ``_first_non_finite`` then finds no culprit."""
    with torch.no_grad():
        return torch.stack(torch._foreach_norm(tensors))


def states(values: torch.Tensor) -> torch.Tensor:
    """FINITE, INF or NAN per value, on the device."""
    return torch.where(torch.isnan(values), NAN, torch.where(torch.isinf(values), INF, FINITE))


def non_finite_codes(tensors: list[torch.Tensor]) -> torch.Tensor:
    """FINITE, INF or NAN per tensor, as a device tensor: no host sync."""
    return states(norms(tensors))


def non_finite_code(tensors: list[torch.Tensor]) -> torch.Tensor:
    """The worst state of a list of tensors, as a 0-d device tensor: no host sync."""
    return non_finite_codes(tensors).max()


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

    - ``action="stop"`` (the default) costs no host sync in a training step, and two ops per optimizer step.
      Before every optimizer step (D's and G's) the norms of that optimizer's gradients and of all weights are
      taken on the device (one fused kernel) and kept; so are the losses of every update. Every
      ``check_every_n_steps`` generator updates, at the last one and before every checkpoint is written, the ranks
      agree on them in the one all-reduce of ``rank_agreement`` (shared with ``checkpoint_on_signal``; one host
      sync), and every rank stops with the same message naming the first step and quantity. No checkpoint written
      after a non-finite value exists: the last good one stays. The updates after the bad one (at most
      ``check_every_n_steps - 1``) run on and are never saved.
    - ``action="skip"`` reads the check back before every optimizer step (one host sync each) and drops a
      non-finite gradient (that optimizer's step changes nothing); it stops after ``max_consecutive_skips`` in a
      row, or when a weight itself is not finite. Under DDP this decision is the same on every rank without any
      communication: the gradients have just been all-reduced and the weights are replicas.

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
        # Since the last agreement, on the device: each update's losses, by their names; and before each optimizer
        # step the norms of its gradients and of every weight, with the step and the names of those tensors.
        self._losses: dict[tuple[str, ...], list[list[torch.Tensor]]] = {}  # per step, each loss (0-d)
        self._norms: list[tuple[int, list[str], list[torch.Tensor]]] = []  # (step, names, norms)
        self._names: dict[int, tuple[int, list[str]]] = {}  # id(optimizer) -> (its tensors' count, their names)

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

    # ---- before each optimizer step: gradients and weights, the same on every rank -------------------------
    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Optimizer) -> None:
        if getattr(trainer.precision_plugin, "scaler", None) is not None:
            return  # the scaler checks the gradients; the weights are checked with the losses
        params = [p for group in optimizer.param_groups for p in group["params"]]
        with_grad = [p for p in params if p.grad is not None]
        weights = list(pl_module.parameters())
        tensors = [p.grad for p in with_grad] + weights
        if self.action == "skip":
            self._skip_if_non_finite(trainer, pl_module, params, non_finite_codes(tensors), len(with_grad))
        else:  # each norm kept apart until the check stacks them all: one op per check, not one per step
            with torch.no_grad():
                each = torch._foreach_norm(tensors)
            self._norms.append((trainer.global_step + 1, self._tensor_names(optimizer, with_grad, pl_module), each))

    def _tensor_names(
        self, optimizer: Optimizer, with_grad: list[torch.Tensor], pl_module: L.LightningModule
    ) -> list[str]:
        """ "gradient of <name>" for this optimizer's gradients, then "weight <name>" for every weight (cached)."""
        count, names = self._names.get(id(optimizer), (-1, []))
        if count != len(with_grad):  # first call, or another set of parameters got gradients: named anew
            by_id = {id(p): name for name, p in pl_module.named_parameters()}
            names = [f"gradient of {by_id.get(id(p), '?')}" for p in with_grad] + [
                f"weight {n}" for n in by_id.values()
            ]
            self._names[id(optimizer)] = (len(with_grad), names)
        return names

    def _skip_if_non_finite(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        params: list[torch.Tensor],
        codes: torch.Tensor,
        num_grads: int,
    ) -> None:
        grad_code = int(codes[:num_grads].max()) if num_grads else FINITE  # the host sync of this optimizer step
        weight_code = int(codes[num_grads:].max())
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
        losses = {name: value for name, value in (outputs or {}).items() if name.startswith("loss/")}
        if losses:
            self._losses.setdefault(tuple(losses), []).append(list(losses.values()))  # stacked at the check
            forget_agreement(trainer)  # a rank agreement taken earlier in this step lacks these losses
        if is_check_step(trainer, self.check_every_n_steps):
            self._act_on_agreement(trainer, pl_module)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if (
            trainer.state.fn == TrainerFn.FITTING
        ):  # every rank saves at the same steps: raising here keeps the bad one out
            self._act_on_agreement(trainer, pl_module)

    def local_flags(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        """For ``rank_agreement``: the worst state of each loss since the last agreement, of the weights now, and
        the first non-finite gradient or weight seen before an optimizer step."""
        weights = list(pl_module.parameters())
        flags: dict[str, Any] = {"weights": non_finite_code(weights) if weights else 0}
        if self._norms:
            flags["gradients_and_weights"] = states(torch.stack([n for _, _, each in self._norms for n in each])).max()
        for names, steps in sorted(self._losses.items()):
            worst = states(torch.stack([value for step in steps for value in step]).view(len(steps), -1)).amax(0)
            flags |= {f"loss:{name}": code for name, code in zip(names, worst.unbind())}
        return flags

    def _act_on_agreement(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        flags = agreed_flags(trainer, pl_module).get(self, {})
        recorded, self._norms, self._losses = self._norms, [], {}
        step = trainer.global_step
        if flags.get("gradients_and_weights", FINITE) != FINITE:
            # Gradients are all-reduced and weights are replicas: every rank recorded the same. The first one named.
            for at, names, each in recorded:
                codes = states(torch.stack(each))
                if codes.max() != FINITE:
                    index = int(codes.argmax())
                    self._stop(trainer, f"{names[index]} is {STATES[int(codes[index])]}", at)
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
