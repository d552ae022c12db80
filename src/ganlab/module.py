"""The GAN LightningModule: wires a generator, a discriminator and an objective, and owns the update order.

Each training step is one generator update: ``discriminator_steps`` discriminator updates, each on a fresh
chunk of real images and fresh noise, then one generator update. The parts arrive as Hydra configs (plain
dicts) and are built here, so ``save_hyperparameters()`` lets a checkpoint rebuild the whole model on its own:
``GAN.load_from_checkpoint(path)``.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.core.optimizer import LightningOptimizer
from torch import Tensor

PRIORS = ("normal", "uniform")


class GAN(L.LightningModule):
    def __init__(
        self,
        generator: dict[str, Any],
        discriminator: dict[str, Any],
        loss: dict[str, Any],
        optimizer: dict[str, Any],
        latent_dim: int = 100,
        prior: str = "normal",  # z ~ N(0, I), or "uniform": z ~ U[-1, 1]
        num_fixed_samples: int = 64,  # size of the fixed noise batch behind the sample grids
    ):
        super().__init__()
        if prior not in PRIORS:
            raise ValueError(f"model.prior must be one of {PRIORS}, got {prior!r}")
        self.save_hyperparameters(logger=False)  # train() logs the whole composed config instead
        self.automatic_optimization = False  # D and G take turns: see training_step
        self.generator = instantiate(generator)
        self.discriminator = instantiate(discriminator)
        self.loss = instantiate(loss)
        # A buffer, not an attribute: it moves with the module, and checkpoints keep it, so sample grids stay
        # comparable across epochs and across a resume.
        self.register_buffer("fixed_noise", self.sample_latent(num_fixed_samples))

    @property
    def discriminator_steps(self) -> int:
        return self.loss.discriminator_steps

    def sample_latent(self, num: int) -> Tensor:
        shape = (num, self.hparams.latent_dim)
        if self.hparams.prior == "normal":
            return torch.randn(shape, device=self.device)
        return torch.rand(shape, device=self.device) * 2 - 1

    def forward(self, z: Tensor) -> Tensor:
        return self.generator(z)  # (B, latent_dim) -> (B, C, H, W) in [-1, 1]

    @torch.no_grad()
    def generate(self, num: int | None = None, z: Tensor | None = None) -> Tensor:
        """Images from the generator in eval mode (BatchNorm uses its running statistics)."""
        z = self.sample_latent(num) if z is None else z.to(self.device)
        was_training = self.generator.training
        self.generator.eval()
        images = self.generator(z)
        self.generator.train(was_training)
        return images

    # ---- optimization ----------------------------------------------------------------------------------
    def configure_optimizers(self):
        # Order matters: training_step unpacks (discriminator, generator).
        optimizers = self.hparams.optimizer
        d_opt = instantiate(optimizers["discriminator"], params=self.discriminator.parameters())
        g_opt = instantiate(optimizers["generator"], params=self.generator.parameters())
        return [d_opt, g_opt]

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, _ = batch  # (k * B, C, H, W): one chunk of B real images per discriminator step
        d_opt, g_opt = self.optimizers()
        d_stats = [self._discriminator_step(d_opt, real) for real in images.chunk(self.discriminator_steps)]
        batch_size = len(images) // self.discriminator_steps
        g_loss = self._generator_step(g_opt, batch_size)
        metrics = {name: torch.stack([s[name] for s in d_stats]).mean() for name in d_stats[0]}
        metrics["loss/g"] = g_loss
        self.log_dict(metrics, on_step=True, on_epoch=False, sync_dist=True, batch_size=batch_size)
        self.log_dict({"d": metrics["loss/d"], "g": g_loss}, prog_bar=True, logger=False, batch_size=batch_size)

    def _discriminator_step(self, d_opt: LightningOptimizer, real: Tensor) -> dict[str, Tensor]:
        with torch.no_grad():
            fake = self.generator(self.sample_latent(len(real)))
        self.toggle_optimizer(d_opt)
        real_logits, fake_logits = self.discriminator(real), self.discriminator(fake)  # (B,), (B,)
        d_loss = self.loss.d_loss(real_logits, fake_logits)
        penalty = self.loss.d_penalty(self.discriminator, real, fake)
        d_opt.zero_grad()
        self.manual_backward(d_loss + penalty)
        self._step_without_counting(d_opt)
        self.untoggle_optimizer(d_opt)
        return {
            "loss/d": d_loss.detach(),
            "loss/d_penalty": penalty.detach(),
            "D(x)": self.loss.d_output(real_logits.detach()).mean(),
            "D(G(z))": self.loss.d_output(fake_logits.detach()).mean(),
        }

    def _generator_step(self, g_opt: LightningOptimizer, batch_size: int) -> Tensor:
        self.toggle_optimizer(g_opt)
        fake_logits = self.discriminator(self.generator(self.sample_latent(batch_size)))
        g_loss = self.loss.g_loss(fake_logits)
        g_opt.zero_grad()
        self.manual_backward(g_loss)
        g_opt.step()
        self.untoggle_optimizer(g_opt)
        return g_loss.detach()

    def _step_without_counting(self, optimizer: LightningOptimizer) -> None:
        """Step an optimizer without advancing ``global_step``.

        Lightning counts every optimizer step in ``global_step`` (Lightning issue 17958), which would make it
        (k + 1) per generator update. Stepping D through the strategy (which still applies the precision
        plugin's gradient scaling) and G through Lightning's wrapper makes ``global_step``, and so
        ``trainer.max_steps``, checkpoint intervals and the logged x-axis, count generator updates.
        """
        self.trainer.strategy.optimizer_step(optimizer.optimizer, closure=lambda: None)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, _ = batch
        # D's verdict on held-out real images; far below D(x) on training images means D memorizes.
        self.log("val/D(x)", self.loss.d_output(self.discriminator(images)).mean(), sync_dist=True, batch_size=len(images))
