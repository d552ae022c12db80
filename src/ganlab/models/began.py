"""BEGAN (Berthelot et al. 2017): an autoencoder discriminator scored by its reconstruction error
(``networks/autoencoder.py``), the objective ``loss=began`` (``losses.BoundaryEquilibrium``), and here the one
thing the module adds: the equilibrium controller k_t follows every discriminator update, the same on every rank.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ganlab.models.gan import GAN


class BEGAN(GAN):
    def __init__(self, latent_dim: int = 64, prior: str = "uniform", **base: Any):  # z as the paper's embedding h
        # Another loss= fails in GAN.__init__: the autoencoder scores by reconstruction error, not by a logit.
        super().__init__(latent_dim=latent_dim, prior=prior, **base)

    def after_discriminator_update(self, real_scores: Tensor, fake_scores: Tensor) -> None:
        # k_t must take the same value on every rank, so it follows the means over all ranks: both means in one
        # all-reduce, and k_t stays a tensor on the device (no host sync per discriminator update).
        means = torch.stack([real_scores.mean(), fake_scores.mean()])
        if self.trainer.world_size > 1:
            means = self.trainer.strategy.reduce(means, reduce_op="mean")
        self.loss.update_state(means[0], means[1])
