"""Callbacks for multi-process tests, loaded by the real train.py through ``+callbacks.<name>._target_=rank_probe.<Class>``
(with ``tests/`` on PYTHONPATH), so that ranks started by Lightning's launcher or by torchrun carry them too."""

from __future__ import annotations

import hashlib
import math

import lightning as L
import torch


class DumpSeedAndShard(L.Callback):
    """Each rank saves its seed, a digest of its train split and the training-example indices of its first epoch."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        datamodule = trainer.datamodule
        images, labels = datamodule.train_set.tensors
        digest = hashlib.sha256(images.numpy().tobytes() + labels.numpy().tobytes()).hexdigest()
        sampler = trainer.train_dataloader.sampler
        state = {
            "seed": datamodule.seed,
            "split": digest,
            "indices": torch.cat(list(iter(sampler))),
            "world_size": trainer.world_size,
        }
        torch.save(state, f"{trainer.default_root_dir}/seed_rank{trainer.global_rank}.pt")


class PoisonRankLoss(L.Callback):
    """Test fault injection: from generator update ``step`` (1-based) on, for ``steps`` updates (None: to the end),
    rank ``rank`` alone adds a NaN constant to G's loss. The constant carries no gradient, so only that rank's
    logged loss is non-finite: its gradients, and so every rank's weights, stay finite (the case the ranks can only
    learn of from each other)."""

    def __init__(self, step: int = 3, rank: int = 1, steps: int | None = None):
        self.step, self.rank, self.steps = step, rank, steps

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        poisoned = getattr(pl_module, "_poisoned", None)
        if poisoned is not None and self.steps is not None and trainer.global_step + 1 == self.step + self.steps:
            pl_module.loss.g_loss = poisoned  # the loss as it was
        if (
            trainer.global_rank != self.rank
            or trainer.global_step + 1 != self.step
            or getattr(pl_module, "_poisoned", False)
        ):
            return
        g_loss = pl_module.loss.g_loss
        pl_module.loss.g_loss = lambda fake_scores: (
            g_loss(fake_scores) + torch.tensor(math.nan, device=fake_scores.device)
        )
        pl_module._poisoned = g_loss


class LogMetrics(L.Callback):
    """Each rank saves the values its FID callback logged at the last validation."""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = {name: float(value) for name, value in trainer.callback_metrics.items() if name.startswith("val/")}
        torch.save(metrics, f"{trainer.default_root_dir}/metrics_rank{trainer.global_rank}.pt")
