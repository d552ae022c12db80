"""Run in a subprocess by test_cpu_allocator.py: minor page faults over 20 CPU updates of the default GAN at
batch 100, after 10 warm-up updates. argv[1] = "keep" (as the module does) or "off" (glibc's own thresholds)."""

from __future__ import annotations

import resource
import sys
from pathlib import Path

import lightning as L
from hydra.utils import instantiate

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ganlab.models.gan  # noqa: E402

from conftest import compose_config  # noqa: E402

WARMUP, STEPS = 10, 20


class FaultCounter(L.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == WARMUP:
            self.start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt

    def on_train_end(self, trainer, pl_module):
        print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - self.start)


if __name__ == "__main__":
    if sys.argv[1] == "off":
        ganlab.models.gan.keep_freed_memory = lambda: False
    cfg = compose_config(Path(sys.argv[2]), ["data.batch_size=100"])
    gan = instantiate(cfg.model, loss=cfg.loss, optimizer=cfg.optimizer, _recursive_=False, _convert_="all")
    datamodule = instantiate(cfg.data, discriminator_steps=gan.discriminator_steps)
    L.Trainer(
        accelerator="cpu",
        max_steps=WARMUP + STEPS,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[FaultCounter()],
    ).fit(gan, datamodule=datamodule)
