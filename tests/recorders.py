"""Callbacks that tests add to a real run with ``+callbacks.<name>._target_=recorders.<Class>`` (this folder is on
the path of pytest and of the subprocesses the tests start)."""

import lightning as L
import torch


class InitialWeights(L.Callback):
    """Keeps G's and D's parameters as training starts (after any data-dependent initialization)."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.parameters = {name: p.detach().clone() for name, p in pl_module.named_parameters()}

    def moved(self, pl_module: L.LightningModule, prefix: str) -> bool:
        """Whether any parameter under ``prefix`` (generator., discriminator.) changed since the start."""
        now = dict(pl_module.named_parameters())
        return any(
            not torch.equal(now[name], value) for name, value in self.parameters.items() if name.startswith(prefix)
        )


def find(trainer: L.Trainer, kind: type) -> L.Callback:
    return next(callback for callback in trainer.callbacks if isinstance(callback, kind))


class LearningRates(L.Callback):
    """The first parameter group's learning rate of every optimizer, as each training batch starts."""

    def __init__(self):
        self.used: list[list[float]] = []

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        self.used.append([optimizer.param_groups[0]["lr"] for optimizer in trainer.optimizers])
