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
from hydra.utils import get_class, instantiate
from lightning.pytorch.core.optimizer import LightningOptimizer
from torch import Tensor, nn

from ganlab.augment import with_augment

PRIORS = ("normal", "uniform")
INIT_BATCH_SIZE = 500  # real images behind a data-dependent initialization
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


class GAN(L.LightningModule):
    #: Images per row of the sample grid; None leaves it to the SampleGrid callback. Conditional models: one class a row.
    grid_nrow: int | None = None

    def __init__(
        self,
        generator: dict[str, Any],
        discriminator: dict[str, Any],
        loss: dict[str, Any],
        optimizer: dict[str, Any],
        latent_dim: int = 100,
        prior: str = "normal",  # z ~ N(0, I), or "uniform": z ~ U[-1, 1]
        num_fixed_samples: int = 64,  # size of the fixed noise batch behind the sample grids
        augment: list[str] | None = None,  # DiffAugment policy on everything D sees in training, e.g. ["translation", "cutout"]
    ):
        super().__init__()
        if prior not in PRIORS:
            raise ValueError(f"model.prior must be one of {PRIORS}, got {prior!r}")
        self.save_hyperparameters(logger=False)  # train() logs the whole composed config instead
        self.automatic_optimization = False  # D and G take turns: see training_step
        self.generator = instantiate(generator)
        self.discriminator = with_augment(instantiate(discriminator), augment)
        self.loss = instantiate(loss)
        self.loss.check_discriminator(self.discriminator)  # e.g. BatchNorm in D with a per-example penalty
        d_score = getattr(self.discriminator, "score", "logit")
        if d_score != self.loss.score:
            raise ValueError(
                f"loss {type(self.loss).__name__} needs a discriminator that scores by {self.loss.score}, but "
                f"{type(self.discriminator).__name__} scores by {d_score}: model=began goes with loss=began (experiment=began)"
            )
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

    def generator_inputs(self, num: int) -> tuple[Tensor, ...]:
        """What G takes for ``num`` random images: (z,). Conditional models add labels."""
        return (self.sample_latent(num),)

    @torch.no_grad()
    def remeasure_batchnorm(self, num_batches: int = 20, batch_size: int = 100) -> None:
        """Measure the running statistics of G's BatchNorm layers afresh, on ``num_batches`` batches of new samples
        (BigGAN's "standing statistics"). Needed when G's weights are replaced by an average (callbacks.ema): the
        averaged running statistics mix in those of long-gone weights, and G in eval mode then draws garbage."""
        norms = [m for m in self.generator.modules() if isinstance(m, BATCH_NORMS) and m.track_running_stats]
        if not norms:
            return
        momenta = [norm.momentum for norm in norms]
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # a plain mean over the batches below
        was_training = self.generator.training
        self.generator.train()
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # training's random stream stays untouched
            torch.manual_seed(0)  # the same weights always get the same statistics (a checkpoint = the final model)
            for _ in range(num_batches):
                self.generator(*self.generator_inputs(batch_size))
        self.generator.train(was_training)
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum

    def sample_grid_images(self) -> Tensor:
        """What the sample grids show: G's images for the fixed noise, (N, C, H, W) in [-1, 1]."""
        return self.generate(z=self.fixed_noise)

    def setup(self, stage: str) -> None:
        """Data-dependent initialization for networks that have one (weight normalization, Salimans & Kingma 2016):
        on the first training images, the same on every rank, before DDP wraps and broadcasts the model. A resumed
        run's checkpoint then overwrites it."""
        networks = [net for net in (self.generator, self.discriminator) if hasattr(net, "initialize_from_data")]
        datamodule = getattr(self.trainer, "datamodule", None)
        if stage != "fit" or not networks or datamodule is None:
            return
        images, labels = datamodule.train_set[:INIT_BATCH_SIZE]
        images, _ = datamodule.on_after_batch_transfer((images.to(self.device), labels.to(self.device)), 0)
        for net in networks:
            net.initialize_from_data(images)

    # ---- optimization ----------------------------------------------------------------------------------
    def configure_optimizers(self):
        # Order matters: training_step unpacks (discriminator, generator).
        optimizers = self.hparams.optimizer
        d_opt = instantiate(optimizers["discriminator"], params=self.discriminator.parameters())
        g_opt = instantiate(optimizers["generator"], params=self.generator.parameters())
        return [d_opt, g_opt]

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> dict[str, Tensor]:
        images, labels = batch  # (k * B, C, H, W), (k * B,): one chunk of B real images per discriminator step
        d_opt, g_opt = self.optimizers()
        logs = self._logs_this_step()  # before the generator update advances global_step
        chunks = list(zip(images.chunk(self.discriminator_steps), labels.chunk(self.discriminator_steps)))
        d_stats = [self._discriminator_step(d_opt, real, real_labels) for real, real_labels in chunks]
        g_stats = self._generator_step(g_opt, *chunks[-1])
        metrics = {name: torch.stack([s[name] for s in d_stats]).mean() for name in d_stats[0]} | g_stats
        if logs:
            batch_size = len(chunks[-1][0])
            self.log_dict(metrics, on_step=True, on_epoch=False, sync_dist=True, batch_size=batch_size)
            self.log_dict({"d": metrics["loss/d"], "g": metrics["loss/g"]}, prog_bar=True, logger=False, batch_size=batch_size)
        return metrics  # every step's values reach the callbacks as `outputs` (the divergence guard reads them)

    def _logs_this_step(self) -> bool:
        """Whether the logger writes this step (every ``trainer.log_every_n_steps`` generator updates).

        ``self.log`` costs about 0.3 ms a value on CPU, a third of an MLP step, and Lightning writes only every
        n-th step anyway, so the other steps skip it. The condition is Lightning's own, asked before this step's
        generator update (``global_step`` then counts the batches done, as ``_batches_that_stepped`` does), so
        it is the same on every DDP rank.
        """
        every = self.trainer.log_every_n_steps
        return every > 0 and (self.global_step + 1) % every == 0

    # The two objectives on one chunk of real images. Variants (conditional, semi-supervised) override these
    # two and keep the update order, the constraints and the logging of the steps below.
    def discriminator_loss(self, real: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]:
        """(loss to minimize, real scores (B,), fake scores (B,), terms to log)."""
        with torch.no_grad():
            fake = self.generator(self.sample_latent(len(real)))
        real_scores, fake_scores = self.discriminator(real), self.discriminator(fake)  # (B,), (B,)
        d_loss = self.loss.d_loss(real_scores, fake_scores)
        penalty = self.loss.d_penalty(self.discriminator, real, fake)
        return d_loss + penalty, real_scores, fake_scores, {"loss/d": d_loss, "loss/d_penalty": penalty}

    def generator_loss(self, real: Tensor, labels: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """(loss to minimize, terms to log), for as many fakes as there are real images in the chunk."""
        g_loss = self.loss.g_loss(self.discriminator(self.generator(self.sample_latent(len(real)))))
        return g_loss, {"loss/g": g_loss}

    def _discriminator_step(self, d_opt: LightningOptimizer, real: Tensor, labels: Tensor) -> dict[str, Tensor]:
        self.toggle_optimizer(d_opt)
        d_total, real_scores, fake_scores, terms = self.discriminator_loss(real, labels)
        d_opt.zero_grad()
        self.manual_backward(d_total)
        self._step_without_counting(d_opt)
        self.loss.constrain_discriminator(self.discriminator)
        self.untoggle_optimizer(d_opt)
        real_scores, fake_scores = real_scores.detach(), fake_scores.detach()
        stats = {name: value.detach() for name, value in terms.items()}
        stats |= {"D(x)": self.loss.d_output(real_scores).mean(), "D(G(z))": self.loss.d_output(fake_scores).mean()}
        stats |= self.loss.metrics(real_scores, fake_scores)
        if self.loss.stateful:  # every rank must apply the same update, so it sees the means over all ranks
            reduce = self.trainer.strategy.reduce
            self.loss.update_state(reduce(real_scores.mean(), reduce_op="mean"), reduce(fake_scores.mean(), reduce_op="mean"))
        return stats

    def _generator_step(self, g_opt: LightningOptimizer, real: Tensor, labels: Tensor) -> dict[str, Tensor]:
        self.toggle_optimizer(g_opt)
        g_loss, terms = self.generator_loss(real, labels)
        g_opt.zero_grad()
        self.manual_backward(g_loss)
        g_opt.step()
        self.untoggle_optimizer(g_opt)
        return {name: value.detach() for name, value in terms.items()}

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

    # ---- checkpoints -----------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["gan_class"] = f"{type(self).__module__}.{type(self).__qualname__}"
        checkpoint["loss_state"] = self.loss.state_dict()  # BEGAN's k_t: a resumed run goes on from it

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.loss.load_state_dict(checkpoint.get("loss_state", {}))

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, *args, **kwargs):
        """Rebuild the model a checkpoint was saved from, whichever variant it is: ``GAN.load_from_checkpoint``
        returns a ``ConditionalGAN`` for a cGAN checkpoint."""
        saved = torch.load(checkpoint_path, map_location="cpu", weights_only=False).get("gan_class")
        variant = get_class(saved) if saved else cls
        if variant is not cls and issubclass(variant, cls):
            return variant.load_from_checkpoint(checkpoint_path, *args, **kwargs)
        return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)
