"""Exact resume: randomness tied to the generator update, so a resumed run draws what an uninterrupted one would.

What a resumed run needs and where it comes from:

- G, D, both optimizers, ``global_step``, the fixed noise, BatchNorm statistics: Lightning's checkpoint.
- The data position: the samplers' ``state_dict`` (``ganlab.data.samplers``), which Lightning keeps because
  the train loader is a ``ResumableLoader``.
- Randomness (noise, dropout, gradient-penalty mixing): ``StepSeed`` below.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import numpy as np
import torch

log = logging.getLogger(__name__)


class StepSeed(L.Callback):
    """Before every generator update, seed torch's RNG from (seed, step).

    Saving and restoring the RNG state at a checkpoint is not enough: between the save and the next step a run
    may validate, start an epoch or build a DataLoader iterator, each of which draws from the global RNG, and a
    resumed run does not repeat those draws in the same order. Seeding from the step makes the noise and the
    dropout masks of step N the same whatever ran before it; the seed travels in the checkpoint.

    The rank is part of the seed: each DDP rank draws its own noise and dropout masks, so the ranks' fakes add
    up to a batch of world_size x B distinct images (one ``seed_everything`` alone gives every rank the same).
    """

    def __init__(self, seed: int):
        self.seed = seed

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        entropy = [self.seed, trainer.global_step, trainer.global_rank]
        torch.manual_seed(int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0]))

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict["seed"] != self.seed:
            log.info("Resuming with the checkpoint's seed %d (this run's seed is %d)", state_dict["seed"], self.seed)
        self.seed = state_dict["seed"]
