"""An exponential moving average of the weights (on Lightning's ``EMAWeightAveraging``), made to work for a GAN."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import EMAWeightAveraging

log = logging.getLogger(__name__)


class EMA(EMAWeightAveraging):
    """An exponential moving average of every weight (Lightning's ``EMAWeightAveraging``: ``decay``,
    ``update_starting_at_step``, ...), made to work for a GAN.

    The averaged weights are what validation (val/fid, the sample grids), the checkpoints' ``state_dict`` (so
    ``evaluate.py`` and ``sample.py``) and the model after training use; the raw weights go on training and are
    kept in checkpoints for resuming. Changes to Lightning's callback:
    - G's BatchNorm statistics are measured afresh for the averaged weights before each use, since averaging
      running statistics mixes in those of the early weights (G in eval mode then draws garbage);
    - the raw weights come back at ``on_validation_end``, after every callback's ``on_validation_epoch_end``
      (FID, sample grid) has seen the averaged ones. List it first among the callbacks, so that its
      ``on_train_end`` puts the averaged weights in before the final sample grid;
    - the average is updated with one fused lerp over all weights and a count kept in Python: no host sync
      (``AveragedModel.update_parameters`` reads its ``n_averaged`` tensor twice per update, and loops over the
      weights);
    - ``half_life_rampup`` (StyleGAN2-ADA's ``ema_rampup``): the average's half-life is at most this share of the
      updates done so far, so that it forgets the early weights while they are far from good and reaches
      ``decay``'s span only in long runs. None: ``decay`` from the first update.
    """

    def __init__(
        self,
        decay: float = 0.999,
        batchnorm_batches: int = 20,
        half_life_rampup: float | None = None,
        **kwargs: Any,
    ):
        if not 0.0 <= decay < 1.0:
            raise ValueError(
                f"callbacks.ema.decay={decay} is outside [0, 1): pick e.g. 0.99 (an average over ~100 updates)"
            )
        if half_life_rampup is not None and half_life_rampup <= 0:
            raise ValueError(
                f"callbacks.ema.half_life_rampup={half_life_rampup} must be positive: pick e.g. 0.05 (a half-life of "
                "5% of the updates so far), or null for none"
            )
        # Parameters only: buffers are G's fixed noise (constant; averaging it drifted it by rounding across a
        # resume) and BatchNorm statistics (measured afresh for the averaged weights instead).
        kwargs.setdefault("use_buffers", False)
        super().__init__(decay=decay, **kwargs)
        self.decay = decay
        self.batchnorm_batches = batchnorm_batches
        self.half_life_rampup = half_life_rampup
        self._raw_state: dict[str, torch.Tensor] | None = None  # the raw weights once training ended

    def decay_at(self, updates_done: int) -> float:
        """The decay of the update after ``updates_done`` generator updates: ``decay``, or with ``half_life_rampup``
        the one whose half-life is that share of the updates done, if shorter."""
        if self.half_life_rampup is None:
            return self.decay
        half_life = self.half_life_rampup * max(updates_done, 1)
        return min(self.decay, 0.5 ** (1.0 / half_life))

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        # As Lightning's: global_step counts updates done, should_update takes a zero-based index.
        if trainer.global_step > self._latest_update_step and self.should_update(step_idx=trainer.global_step - 1):
            self._update_average(pl_module, trainer.global_step)
            self._latest_update_step = trainer.global_step

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch > self._latest_update_epoch and self.should_update(epoch_idx=trainer.current_epoch):
            self._update_average(pl_module, trainer.global_step)
            self._latest_update_epoch = trainer.current_epoch

    @torch.no_grad()
    def _update_average(self, pl_module: L.LightningModule, updates_done: int) -> None:
        """``AveragedModel.update_parameters`` with the EMA, without reading ``n_averaged`` back: the first update
        (no update recorded yet, in this run or the checkpoint it resumed) copies, the others lerp by
        ``1 - decay_at(updates_done)`` (a Python float: the schedule needs no host sync either)."""
        average = self._average_model
        averaged, current = list(average.module.parameters()), list(pl_module.parameters())
        if self._latest_update_step == 0 and self._latest_update_epoch == -1:
            torch._foreach_copy_(averaged, current)
        else:
            torch._foreach_lerp_(averaged, current, 1.0 - self.decay_at(updates_done))
        # As AveragedModel without use_buffers: the buffers follow the model's (spectral norm's u and v, which the
        # averaged weights' sigma is computed with in eval; BatchNorm's, measured afresh before use).
        buffers = list(average.module.buffers())
        if buffers:
            torch._foreach_copy_(buffers, list(pl_module.buffers()))
        average.n_averaged += 1  # a device op, kept for the checkpoint's AveragedModel state

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._average_model is not None:  # None outside fit (validate-only runs): nothing to swap
            super().on_validation_epoch_start(trainer, pl_module)  # the averaged weights in
            pl_module.remeasure_batchnorm(self.batchnorm_batches)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Not yet: see on_validation_end."""

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_epoch_end(
            trainer, pl_module
        )  # the raw weights back (and the measured statistics into the average)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._raw_state = None  # training again: the module holds the raw weights

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Kept for a checkpoint saved after this (trainer.save_checkpoint after fit): it must still resume from
        # the raw weights, which Lightning's on_train_end overwrites with the averaged ones.
        self._raw_state = {name: tensor.detach().clone() for name, tensor in pl_module.state_dict().items()}
        super().on_train_end(trainer, pl_module)  # the averaged weights in, for good
        pl_module.remeasure_batchnorm(self.batchnorm_batches)

    def state_dict(self) -> dict[str, Any]:
        # The schedule too, so that a resume with other settings (or after a change of the defaults) says so.
        return {**super().state_dict(), "decay": self.decay, "half_life_rampup": self.half_life_rampup}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        if "decay" not in state_dict:  # a checkpoint from before the schedule was recorded
            return
        before, now = (state_dict["decay"], state_dict["half_life_rampup"]), (self.decay, self.half_life_rampup)
        if before != now:
            log.warning(
                "The checkpoint's run averaged its weights with %s and goes on with %s: pass the first to keep its "
                "average as it was",
                _as_overrides(*before),
                _as_overrides(*now),
            )

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if self._average_model is not None:
            self._average_model.module.remeasure_batchnorm(self.batchnorm_batches)  # the GAN inside the AveragedModel
        super().on_save_checkpoint(trainer, pl_module, checkpoint)  # state_dict: the averaged weights
        if self._raw_state is not None:  # after on_train_end the module holds the average
            checkpoint["current_model_state"] = self._raw_state


def _as_overrides(decay: float, half_life_rampup: float | None) -> str:
    rampup = "null" if half_life_rampup is None else half_life_rampup
    return f"callbacks.ema.decay={decay} callbacks.ema.half_life_rampup={rampup}"
