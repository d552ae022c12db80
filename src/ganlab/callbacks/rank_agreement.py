"""One decision on every rank: the flags of the callbacks that stop or skip, agreed with one all-reduce.

A callback that decides from something only its own rank saw (a loss of its shard, a signal to its process)
must not act on it alone: a rank that stops leaves the others waiting in their next collective until the
process group times out. Such a callback implements ``local_flags(trainer, pl_module) -> {name: value}``
(numbers >= 0; 0 means nothing happened; they may be device tensors, so that setting them costs no host sync)
and reads ``agreed_flags(trainer, pl_module)[self]``: the maximum of each flag over all ranks.

All participating callbacks' flags travel in ONE stacked tensor, in ONE all-reduce (MAX), read back with ONE
host sync, and once per generator update (callbacks that ask at the same step share it, unless a participant's
flags changed in between: ``forget_agreement``). The ranks call
it at the same steps because they run the same callbacks with the same configuration, and every caller asks at
steps that every rank reaches (every N-th generator update, a checkpoint save).
"""

from __future__ import annotations

import lightning as L
import torch
import torch.distributed as dist

_CACHE = "_ganlab_agreed_flags"


def participants(trainer: L.Trainer) -> list[L.Callback]:
    return [callback for callback in trainer.callbacks if callable(getattr(callback, "local_flags", None))]


def agreed_flags(trainer: L.Trainer, pl_module: L.LightningModule) -> dict[L.Callback, dict[str, float]]:
    """Every participating callback's flags, each the maximum over all ranks; computed once per generator update."""
    step = trainer.global_step
    cached = getattr(trainer, _CACHE, None)
    if cached is not None and cached[0] == step:
        return cached[1]
    callbacks = participants(trainer)
    keys: list[tuple[L.Callback, str]] = []
    values: list[torch.Tensor] = []
    device = pl_module.device  # the root device: CUDA under NCCL, the CPU under gloo
    for callback in callbacks:
        for name, value in callback.local_flags(trainer, pl_module).items():
            keys.append((callback, name))
            values.append(torch.as_tensor(value, dtype=torch.float32, device=device).reshape(()))
    agreed: dict[L.Callback, dict[str, float]] = {callback: {} for callback in callbacks}
    if values:
        stacked = torch.stack(values)
        if trainer.world_size > 1 and dist.is_available() and dist.is_initialized():
            dist.all_reduce(stacked, op=dist.ReduceOp.MAX)  # the one collective
        for (callback, name), value in zip(keys, stacked.tolist()):  # the one host sync
            agreed[callback][name] = value
    setattr(trainer, _CACHE, (step, agreed))
    return agreed


def is_check_step(trainer: L.Trainer, every_n_steps: int) -> bool:
    """Every ``every_n_steps``-th generator update, and the last one (max_steps), on every rank alike."""
    step = trainer.global_step
    return step % every_n_steps == 0 or (trainer.max_steps > 0 and step >= trainer.max_steps)


def forget_agreement(trainer: L.Trainer) -> None:
    """Drop this step's agreement: a participant's flags changed after it was taken (the divergence guard records
    a step's losses in ``on_train_batch_end``, which may run after ``checkpoint_on_signal`` asked). The next
    ``agreed_flags`` of this step all-reduces again; every rank runs the same callbacks in the same order, so they
    all do."""
    if hasattr(trainer, _CACHE):
        delattr(trainer, _CACHE)
