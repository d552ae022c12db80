"""A callback for DDP tests, loaded by the real train.py through ``+callbacks.dump._target_=dump_rank_state.DumpRankState``
(with this folder on PYTHONPATH): each rank saves its parameters (at the start and the end), buffers, objective
state, rank count, step count and whether BatchNorm became SyncBatchNorm when training ends."""

from pathlib import Path

import lightning as L
import torch


def load_rank_states(run_dir: Path, world_size: int = 2) -> list[dict]:
    """Each rank's saved state, on the CPU: rank N of a GPU run saved its tensors on ``cuda:N``, and tensors
    on two devices cannot be compared."""
    return [torch.load(Path(run_dir) / f"rank{rank}.pt", map_location="cpu") for rank in range(world_size)]


class DumpRankState(L.Callback):
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.initial = {name: p.detach().clone() for name, p in pl_module.named_parameters()}

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        state = {
            "initial": self.initial,
            "parameters": {name: p.detach().clone() for name, p in pl_module.named_parameters()},
            "buffers": {name: b.clone() for name, b in pl_module.named_buffers()},
            "loss": pl_module.loss.state_dict(),
            "world_size": trainer.world_size,
            "sync_batchnorm": any(isinstance(module, torch.nn.SyncBatchNorm) for module in pl_module.modules()),
            "global_step": trainer.global_step,
        }
        torch.save(state, f"{trainer.default_root_dir}/rank{trainer.global_rank}.pt")
