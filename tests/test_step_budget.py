"""What a training step of the default run asks of the host, counted with torch.profiler on the CPU: the ATen ops
it issues (on a GPU, most of them a kernel launch of a few microseconds each) and the scalar reads it makes (on a
GPU, each one a host synchronisation that drains the device's queue).

Each update is counted from the start of its batch to the start of the next, so that every callback's and
logger's work after the step counts too. Counted: top-level ``aten::`` ops (not called from another one) and
``aten::_local_scalar_dense`` (what ``.item()``, ``.tolist()`` and ``bool(tensor)`` run). Not counted: the reads
inside a fused optimizer kernel (``aten::_fused_adam_``), which on the CPU reads each step count back but on a
GPU reads them on the device.
"""

from __future__ import annotations

import lightning as L
from omegaconf import open_dict
from torch.profiler import ProfilerActivity, profile

from ganlab.train import train

FUSED_OPTIMIZERS = ("aten::_fused_adam_", "aten::_fused_adamw_")
FIRST, UPDATES = 20, 10  # after warm-up; 10 updates hold one logging step (trainer.log_every_n_steps=10)
TOP_LEVEL_OPS_PER_UPDATE = 450  # 907 before the step was built for the GPU (docs/performance.md)
SCALAR_READS_PER_UPDATE = 2  # 25.6 before; 0 on updates that do not log


def _ancestors(event):
    parent = event.cpu_parent
    while parent is not None:
        yield parent
        parent = parent.cpu_parent


class CountPerUpdate(L.Callback):
    """Top-level ATen ops and scalar reads of each of ``UPDATES`` generator updates after ``FIRST``."""

    def __init__(self):
        self.batches, self.prof, self.updates = 0, None, []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.prof is not None:
            self.prof.__exit__(None, None, None)
            self.updates.append(self._count(self.prof, trainer.global_step))
            self.prof = None
        if FIRST <= self.batches < FIRST + UPDATES:
            self.prof = profile(activities=[ProfilerActivity.CPU])
            self.prof.__enter__()
        self.batches += 1

    @staticmethod
    def _count(prof, step: int) -> dict:
        top_level = reads = 0
        for event in prof.events():
            if not event.name.startswith("aten::"):
                continue
            ancestors = [a.name for a in _ancestors(event)]
            top_level += not any(name.startswith("aten::") for name in ancestors)
            if event.name == "aten::_local_scalar_dense" and not any(name in FUSED_OPTIMIZERS for name in ancestors):
                reads += 1
        return {"step": step, "top_level": top_level, "reads": reads}


def test_a_default_update_issues_few_ops_and_reads_scalars_only_when_it_logs(make_cfg):
    cfg = make_cfg(
        [
            f"trainer.max_steps={FIRST + UPDATES + 1}",
            "trainer.log_every_n_steps=10",  # the default run's, which the tests' quick settings change
            "data.batch_size=64",
            "++callbacks.progress_bar._target_=ganlab.callbacks.progress_bar.StepProgressBar",
            "++callbacks.fid=null",  # validation, not a training step
            "++callbacks.best_fid_checkpoint=null",
        ]
    )
    with open_dict(cfg), open_dict(cfg.callbacks):
        cfg.callbacks.count = {"_target_": f"{__name__}.CountPerUpdate"}
    result = train(cfg)
    counter = next(cb for cb in result["trainer"].callbacks if isinstance(cb, CountPerUpdate))
    assert type(result["trainer"].progress_bar_callback).__name__ == "StepProgressBar"  # the default run's bar
    updates = counter.updates
    assert len(updates) == UPDATES
    every = result["trainer"].log_every_n_steps
    logging = [u for u in updates if u["step"] % every == 0]
    assert len(logging) == 1, updates
    assert all(u["reads"] == 0 for u in updates if u not in logging), updates
    assert sum(u["reads"] for u in updates) <= SCALAR_READS_PER_UPDATE * UPDATES, updates
    assert sum(u["top_level"] for u in updates) <= TOP_LEVEL_OPS_PER_UPDATE * UPDATES, updates
