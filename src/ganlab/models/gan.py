"""The base of every GAN family: a LightningModule that wires networks, optimizers and an objective, and owns the
update order.

Each training step is one generator update: ``discriminator_steps`` discriminator updates, each on its own chunk
of the batch, then one generator update (``training_step``, the only place the order is written). The parts
arrive as Hydra configs (plain dicts) and are built here, so ``save_hyperparameters()`` lets a checkpoint rebuild
the whole model on its own: ``GAN.load_from_checkpoint(path)`` returns the family the checkpoint was saved from.

A family declares what it is; the README's "Layout" lists the parts with an example of each:

- its objective: ``discriminator_loss(batch)`` and ``generator_loss(batch)`` on a typed batch (``batch_type``),
  by default built from the finer hooks ``generator_inputs``, ``discriminate``, ``discriminator_terms``,
  ``generator_terms``, ``after_discriminator_update`` for one-G-one-D families;
- its networks and optimizers: ``build_networks``, ``parameter_groups`` (each optimizer's groups, by name),
  ``phases`` (which optimizers step in D's and in G's phase), ``lr_schedule``;
- its evaluation: ``evaluator_class`` (``ganlab.evaluation``), and ``preset``, the experiment that fits it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from typing import Annotated, Any, ClassVar

import lightning as L
import torch
from hydra.utils import get_class, instantiate
from lightning.pytorch.core.optimizer import LightningOptimizer
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.optim.lr_scheduler import LambdaLR
from torchmetrics.classification import MulticlassAccuracy

from ganlab.config.bounds import Bound, check_arguments
from ganlab.config.checks import ConfigError
from ganlab.data.batches import Batch, LabelledBatch, split_batch
from ganlab.evaluation.base import Evaluator
from ganlab.evaluation.samples import Samples
from ganlab.networks.augment import AugmentedDiscriminator, with_augment
from ganlab.networks.stabilizers import couples_examples
from ganlab.run.checkpoints import current_target, legacy_hparams, repair_epoch_progress
from ganlab.run.cpu_allocator import keep_freed_memory

log = logging.getLogger(__name__)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
PRIORS = ("normal", "uniform")
LR_SCALINGS = ("none", "linear", "sqrt")  # optimizer.scale_lr: the learning rates under DDP (docs/gpu.md)
INIT_BATCH_SIZE = 500  # real images behind a data-dependent initialization
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def parameters(networks: list[nn.Module]) -> list[nn.Parameter]:
    """The parameters of ``networks``, in order."""
    return [p for network in networks for p in network.parameters()]


def split_scores(output: Tensor | tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
    """A discriminator's output as (adversarial score (B,), auxiliary outputs): see ``ganlab.networks``."""
    return (output[0], tuple(output[1:])) if isinstance(output, tuple) else (output, ())


@contextmanager
def eval_mode(*networks: nn.Module):
    """Networks in eval mode (BatchNorm on its running statistics, no dropout), their modes restored after."""
    modes = [network.training for network in networks]
    for network in networks:
        network.eval()
    try:
        yield
    finally:
        for network, mode in zip(networks, modes):
            network.train(mode)


class GAN(L.LightningModule):
    #: How the family is scored and drawn (evaluate.py, sample.py, the FID and sample-grid callbacks).
    evaluator_class: ClassVar[type[Evaluator]] = Samples
    #: Whether G takes class labels (``generate(labels=...)``).
    conditional: ClassVar[bool] = False
    #: The batches the family's objective takes (``ganlab.data.batches``), and the preset that gives it such data.
    batch_type: ClassVar[type] = LabelledBatch
    preset: ClassVar[str | None] = None
    #: Base arguments the family sets itself (not configured: left out of its schema).
    derived_arguments: ClassVar[tuple[str, ...]] = ()
    #: The family's own measure besides FID, logged by its validation_step (the run's summary shows it).
    headline_metric: ClassVar[str | None] = None

    def __init__(
        self,
        generator: dict[str, Any],
        discriminator: dict[str, Any],
        loss: dict[str, Any],
        optimizer: dict[str, Any],
        latent_dim: Annotated[int, Bound(at_least=1)] = 100,
        prior: str = "normal",  # z ~ N(0, I), or "uniform": z ~ U[-1, 1]
        num_fixed_samples: Annotated[int, Bound(at_least=1)] = 64,  # the fixed noise batch behind the sample grids
        augment: list[str] | None = None,  # DiffAugment on everything D sees in training, e.g. [translation, cutout]
        augment_p: Annotated[
            float | None, Bound(at_least=0, at_most=1)
        ] = None,  # each augmentation's probability per image: 1 (DiffAugment) unless set; ADA's start, 0 unless set
        augment_target: Annotated[
            float | None, Bound(above=-1, below=1)
        ] = None,  # ADA: adapt p so that E[sign D(x)] on real images stays at this (StyleGAN2-ADA: 0.6)
        augment_speed: Annotated[int, Bound(at_least=1)] = 100_000,  # ADA: images for p to move from 0 to 1
        compile: bool = False,  # torch.compile G's and D's forwards for training (docs/gpu.md)
        compile_mode: str = "default",  # torch.compile's mode: reduce-overhead adds CUDA graphs
        lr_decay_start: Annotated[
            int | None, Bound(at_least=0)
        ] = None,  # from this generator update on, both rates decay linearly to 0 at trainer.max_steps
    ):
        super().__init__()
        check_arguments(GAN.__init__, locals(), "model.")
        if prior not in PRIORS:
            raise ValueError(f"model.prior must be one of {PRIORS}, got {prior!r}")
        if compile_mode not in COMPILE_MODES:
            raise ValueError(f"model.compile_mode must be one of {COMPILE_MODES}, got {compile_mode!r}")
        if augment_target is not None and not augment:
            raise ValueError(
                "model.augment_target adapts the probability of model.augment's augmentations, and none are set: "
                "add model.augment=[translation,cutout]"
            )
        if optimizer.get("scale_lr", "none") not in LR_SCALINGS:
            raise ValueError(f"optimizer.scale_lr must be one of {LR_SCALINGS}, got {optimizer.get('scale_lr')!r}")
        self.save_hyperparameters(logger=False)  # train() logs the whole composed config instead
        self.automatic_optimization = False  # D and G take turns: see training_step
        self.loss = instantiate(loss)
        if augment_target is not None and self.loss.decision_boundary is None:
            raise ValueError(
                f"model.augment_target reads D's overfitting as E[sign D(x)], which has no meaning for "
                f"{type(self.loss).__name__}'s scores (no decision boundary; gan, nsgan, lsgan and hinge have one): "
                f"fix the probability with model.augment_p instead"
            )
        self.build_networks(generator, discriminator)
        for network in self.critic_networks():
            # The pairing first: it is the fix that matters when D cannot serve the loss at all.
            d_score = getattr(network, "score", "logit")
            if d_score != self.loss.score:
                raise ValueError(
                    f"loss {type(self.loss).__name__} needs a discriminator that scores by {self.loss.score}, but "
                    f"{type(network).__name__} scores by {d_score}: model=began goes with loss=began (experiment=began)"
                )
            self.loss.check_discriminator(network)  # e.g. BatchNorm in D with a per-example penalty
        if self.loss.lecam_weight > 0:
            own_loss = type(self).discriminator_loss is not GAN.discriminator_loss
            if own_loss or self.loss.score != "logit":
                has = "its own discriminator loss" if own_loss else f"a discriminator that scores by {self.loss.score}"
                raise ValueError(
                    f"loss.lecam_weight regularizes the logits of the default objective's discriminator, and "
                    f"{type(self).__name__} has {has}: set loss.lecam_weight=0"
                )
        if self.loss.relativistic and type(self).generator_loss is not GAN.generator_loss:
            raise ValueError(
                f"loss {type(self.loss).__name__} pairs each fake with a real image in G's update too, which "
                f"{type(self).__name__}'s own generator loss does not do: choose another loss (loss=hinge, the default)"
            )
        # A buffer, not an attribute: it moves with the module, and checkpoints keep it, so sample grids stay
        # comparable across epochs and across a resume.
        self.register_buffer("fixed_noise", self.sample_latent(num_fixed_samples))

    # ---- hooks a variant overrides ---------------------------------------------------------------------
    def build_networks(self, generator: dict[str, Any], discriminator: dict[str, Any]) -> None:
        self.generator = instantiate(generator)
        self.discriminator = self.instantiate_discriminator(discriminator)

    def instantiate_discriminator(self, config: dict[str, Any], **kwargs: Any) -> nn.Module:
        """A discriminator from its config, behind DiffAugment when ``model.augment`` is set: a family that builds
        its own discriminators builds each through this."""
        hp = self.hparams
        return with_augment(
            instantiate(config, **kwargs),
            hp.get("augment"),
            probability=hp.augment_p,
            target=hp.augment_target,
            speed=hp.augment_speed,
        )

    def adaptive_augmenters(self) -> list[AugmentedDiscriminator]:
        """The discriminators whose augmentation probability adapts (``model.augment_target``)."""
        if getattr(self, "_adaptive", None) is None:
            self._adaptive = [
                net for net in self.discriminator_networks() if isinstance(net, AugmentedDiscriminator) and net.adaptive
            ]
        return self._adaptive

    def generator_networks(self) -> list[nn.Module]:
        """The networks the generator optimizer trains (and that sampling puts in eval mode)."""
        return [self.generator]

    def discriminator_networks(self) -> list[nn.Module]:
        """The networks the discriminator optimizer trains."""
        return [self.discriminator]

    def critic_networks(self) -> list[nn.Module]:
        """The networks that score images, which the loss checks and constrains (WGAN's weight clipping): the
        discriminators, not other networks their optimizer also trains (StackGAN's caption encoder)."""
        return self.discriminator_networks()

    def generator_inputs(self, num: int, labels: Tensor | None = None, z: Tensor | None = None) -> tuple[Tensor, ...]:
        """What G takes for ``num`` images: (z,). Unconditional models ignore the labels of the real chunk."""
        return (self.sample_latent(num) if z is None else z.to(self.device),)

    def discriminate(self, images: Tensor, labels: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
        """D's (score (B,), auxiliary outputs) for images whose classes are ``labels`` (B,)."""
        return split_scores(self.discriminator(images))

    def discriminator_terms(
        self, real_aux: tuple[Tensor, ...], fake_aux: tuple[Tensor, ...], labels: Tensor
    ) -> dict[str, Tensor]:
        """Losses added to D's adversarial loss, weighted, by the name they are logged under."""
        return {}

    def generator_terms(self, fake_aux: tuple[Tensor, ...], labels: Tensor) -> dict[str, Tensor]:
        """Losses added to G's adversarial loss, weighted, by the name they are logged under."""
        return {}

    def class_logits(self, aux: tuple[Tensor, ...]) -> Tensor | None:
        """D's class logits (B, N) from its auxiliary outputs; None for a D that does not classify."""
        return None

    def after_discriminator_update(self, real_scores: Tensor, fake_scores: Tensor) -> None:
        """Called after every discriminator update with that update's (B,) scores, detached."""

    # ---- sampling --------------------------------------------------------------------------------------
    def sample_latent(self, num: int) -> Tensor:
        shape = (num, self.hparams.latent_dim)
        if self.hparams.prior == "normal":
            return torch.randn(shape, device=self.device)
        return torch.rand(shape, device=self.device) * 2 - 1

    def forward(self, *inputs: Tensor) -> Tensor:
        return self.generator(*inputs)  # G(z) or G(z, y) -> (B, C, H, W) in [-1, 1]

    @torch.no_grad()
    def generate(self, num: int | None = None, z: Tensor | None = None, labels: Tensor | None = None) -> Tensor:
        """Images from G in eval mode (BatchNorm on its running statistics): ``num`` of them, or one per latent
        in ``z`` (B, latent_dim); conditional models take ``labels`` (B,), else draw the classes in turn."""
        if labels is not None and not self.conditional:
            raise ValueError(
                f"labels need a class-conditional model (model=cgan or model=acgan), not {type(self).__name__}"
            )
        num = len(z) if z is not None else len(labels) if labels is not None else num
        if num is None:
            raise ValueError("generate() needs num, z or labels")
        with eval_mode(*self.generator_networks()):
            return self(*self.generator_inputs(num, labels, z))

    def evaluator(self, metrics: Mapping[str, Any] | None = None) -> Evaluator:
        """This family's evaluation (``ganlab.evaluation``), with the ``metrics`` config (feature network, batch size)."""
        return self.evaluator_class(self, metrics)

    @torch.no_grad()
    def remeasure_batchnorm(self, num_batches: int = 20, batch_size: int = 100) -> None:
        """Measure the running statistics of G's BatchNorm layers afresh, on ``num_batches`` batches of new samples
        (BigGAN's "standing statistics"). Needed when G's weights are replaced by an average (callbacks.ema): the
        averaged running statistics mix in those of long-gone weights, and G in eval mode then draws garbage."""
        networks = self.generator_networks()
        norms = [m for net in networks for m in net.modules() if isinstance(m, BATCH_NORMS) and m.track_running_stats]
        if not norms:
            return
        momenta = [norm.momentum for norm in norms]
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # a plain mean over the batches below
        modes = [net.training for net in networks]
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # training's random stream stays untouched
            torch.manual_seed(0)  # the same weights always get the same statistics (a checkpoint = the final model)
            for net in networks:
                net.train()
            for _ in range(num_batches):
                self(*self.generator_inputs(batch_size))
        for net, mode in zip(networks, modes):
            net.train(mode)
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum

    def check_data(self, datamodule: L.LightningDataModule) -> None:
        """Fail in one line, before the first step, on data this family cannot train on."""
        batch_type = getattr(datamodule, "batch_type", None)  # a user's own datamodule may not say
        if batch_type is not None and batch_type is not self.batch_type:
            fix = f"experiment={self.preset}" if self.preset else "a data= option that yields them"
            raise ConfigError(
                f"{type(self).__name__} trains on {self.batch_type.__doc__.split(' (')[0].lower()}, but the data "
                f"gives {batch_type.__doc__.split(' (')[0].lower()}: train it with {fix}"
            )
        batch_size = getattr(datamodule, "batch_size", None)
        single = [m for net in (*self.generator_networks(), *self.discriminator_networks()) for m in net.modules()]
        if batch_size == 1 and any(isinstance(m, nn.BatchNorm1d) and m.training for m in single):
            raise ConfigError(
                "data.batch_size=1: a BatchNorm1d layer of this model needs at least 2 images a batch to train; "
                "set data.batch_size=2 or more"
            )

    def on_fit_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None:
            self.check_data(datamodule)
        if self.device.type == "cpu":
            keep_freed_memory()  # glibc: no page faults on every step's activations (ganlab/run/cpu_allocator.py)

    def setup(self, stage: str) -> None:
        """Data-dependent initialization for networks that have one (weight normalization, Salimans & Kingma 2016):
        on the first training images, the same on every rank, before DDP wraps and broadcasts the model. A resumed
        run's checkpoint then overwrites it."""
        networks = [
            net
            for net in (*self.generator_networks(), *self.discriminator_networks())
            if hasattr(net, "initialize_from_data")
        ]
        datamodule = getattr(self.trainer, "datamodule", None)
        if stage == "fit" and self.hparams.get("compile"):
            self._compile_networks()
        if stage != "fit" or not networks or datamodule is None:
            return
        # Where the weights are, not self.device: in setup Lightning already reports the target device (cuda:N)
        # while the parameters are still on the CPU.
        device = next(networks[0].parameters()).device
        images, labels = datamodule.train_set[:INIT_BATCH_SIZE]
        images, _ = datamodule.on_after_batch_transfer((images.to(device), labels.to(device)), 0)
        for net in networks:
            net.initialize_from_data(images)

    def _compile_networks(self) -> None:
        """``model.compile=true``: each network's forward compiled in place (``nn.Module.compile``: the state dict
        keeps its names, so checkpoints are the same). Run after the callbacks' setup, so that the EMA's copy stays
        eager. A discriminator under a gradient penalty stays eager: torch.compile does not trace a double backward."""
        mode = self.hparams.get("compile_mode", "default")
        for net in self.generator_networks():
            net.compile(mode=mode)
        if self.loss.penalizes_gradients:
            log.info("model.compile: D stays eager under %s's gradient penalty (a double backward)", self.loss)
            return
        for net in self.discriminator_networks():
            net.compile(mode=mode)

    # ---- optimization ----------------------------------------------------------------------------------
    #: The optimizers each phase of an update steps, by name: the discriminator's phase first, then the
    #: generator's (the update order, fixed in ``training_step``). A third network (InfoGAN's Q head) adds a name.
    phases: ClassVar[dict[str, tuple[str, ...]]] = {"discriminator": ("discriminator",), "generator": ("generator",)}

    def parameter_groups(self) -> dict[str, list[dict[str, Any]]]:
        """Each optimizer's parameter groups, by name: ``{"params": [...]}``, optionally with ``lr_scale`` (a factor
        on that optimizer's learning rate). The order is the optimizers' order in checkpoints."""
        return {
            "discriminator": [{"params": parameters(self.discriminator_networks())}],
            "generator": [{"params": parameters(self.generator_networks())}],
        }

    def optimizer_settings(self, name: str) -> dict[str, Any]:
        """The settings of optimizer ``name`` (``_target_``, ``lr``, ...): the ``optimizer`` group's entry."""
        return dict(self.hparams.optimizer[name])

    def lr_schedule(self, name: str) -> Callable[[int], float] | None:
        """A factor on optimizer ``name``'s learning rates as a function of the generator update (stepped before
        every update, so a resumed run gets the same rates); None keeps them constant. By default
        ``lr_factor`` when ``model.lr_decay_start`` is set, for every optimizer."""
        return None if self.hparams.get("lr_decay_start") is None else self.lr_factor

    def lr_factor(self, step: int) -> float:
        """1 until ``lr_decay_start``, then linearly down to 0 at ``trainer.max_steps`` (CycleGAN's schedule: constant
        for 100 epochs, then linear to 0 over 100; a warm-down for any family)."""
        start, end = self.hparams.get("lr_decay_start"), self.trainer.max_steps
        if start is None or step < start or end is None or end <= start:
            return 1.0
        return max(0.0, (end - step) / (end - start))

    def lr_scale(self) -> float:
        """The learning rates' factor under DDP (``optimizer.scale_lr``): each rank takes a full batch, so the
        global batch is world_size x data.batch_size. 1 for ``none`` (the default) and for one process."""
        scaling = self.hparams.optimizer.get("scale_lr", "none")
        world_size = self._trainer.world_size if self._trainer is not None else 1
        return {"none": 1.0, "linear": float(world_size), "sqrt": math.sqrt(world_size)}[scaling]

    def configure_optimizers(self):
        optimizers, schedulers = [], []
        for name, groups in self.parameter_groups().items():
            settings = self.optimizer_settings(name)
            lr = settings.pop("lr") * self.lr_scale()
            groups = [{"params": list(g["params"]), "lr": lr * g.get("lr_scale", 1.0)} for g in groups]
            optimizer = instantiate(settings, _partial_=True)(groups, lr=lr)
            optimizers.append(optimizer)
            schedule = self.lr_schedule(name)
            if schedule is not None:  # a function of global_step, not of the scheduler's own count
                scheduler = LambdaLR(optimizer, lambda _, schedule=schedule: schedule(self.global_step))
                schedulers.append({"scheduler": scheduler, "interval": "step", "name": f"lr/{name}"})
        self._optimizer_names = list(self.parameter_groups())
        return optimizers, schedulers

    def named_optimizers(self) -> dict[str, LightningOptimizer]:
        optimizers = self.optimizers()
        return dict(zip(self._optimizer_names, optimizers if isinstance(optimizers, list) else [optimizers]))

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        repair_epoch_progress(self.trainer)  # a run resumed at an epoch's end resumes exactly again (checkpoints.py)

    def training_step(self, batch: Batch, batch_idx: int) -> dict[str, Tensor]:
        """One generator update: ``discriminator_steps`` discriminator updates, each on its own chunk of the batch
        (a batch holds k * B real images), then one generator update on the last chunk."""
        optimizers = self.named_optimizers()
        logs = self._logs_this_step()  # before the generator update advances global_step
        chunks = split_batch(batch, self.discriminator_steps)
        d_stats = [self._discriminator_step(optimizers, chunk, logs) for chunk in chunks]
        g_stats = self._generator_step(optimizers, chunks[-1])
        d_metrics = (
            d_stats[0]
            if len(d_stats) == 1
            else {name: torch.stack([s[name] for s in d_stats]).mean() for name in d_stats[0]}
        )
        metrics = d_metrics | g_stats
        schedulers = self.lr_schedulers() or []
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            # The next update's rates, set before the checkpoint callbacks save them (manual optimization steps
            # no scheduler itself).
            scheduler.step()
        if logs:
            self._log_step(metrics, batch_size=len(chunks[-1][0]))
        return metrics  # every step's losses reach the callbacks as `outputs` (the divergence guard reads them)

    def _log_step(self, metrics: dict[str, Tensor], batch_size: int) -> None:
        """This step's values, averaged over DDP ranks, read back as Python numbers in one host sync (given
        tensors, Lightning reduces each in its own collective and reads each back apart)."""
        values = torch.stack([torch.as_tensor(value, device=self.device) for value in metrics.values()]).float()
        if self.trainer.world_size > 1:
            values = self.trainer.strategy.reduce(values, reduce_op="mean")
        numbers = dict(zip(metrics, values.tolist()))
        # Not also as prog_bar values: Lightning reads those back at every batch's end (the bar shows loss/d and
        # loss/g from callback_metrics when it redraws).
        self.log_dict(numbers, on_step=True, on_epoch=False, batch_size=batch_size)

    @property
    def discriminator_steps(self) -> int:
        return self.loss.discriminator_steps

    def _logs_this_step(self) -> bool:
        """Whether the logger writes this step (every ``trainer.log_every_n_steps`` generator updates).

        ``self.log`` costs about 0.3 ms a value on CPU, a third of an MLP step, and Lightning writes only every
        n-th step anyway, so the other steps skip it. The condition is Lightning's own, asked before this step's
        generator update (``global_step`` then counts the batches done, as ``_batches_that_stepped`` does), so
        it is the same on every DDP rank.
        """
        every = self.trainer.log_every_n_steps
        return every > 0 and (self.global_step + 1) % every == 0

    # ---- the objective: the whole of it is a family's extension point ----------------------------------
    # ``discriminator_loss(batch)`` and ``generator_loss(batch)`` take one chunk of a typed batch
    # (``ganlab.data.batches``). The defaults below serve one-G-one-D families from the finer hooks above.
    def discriminator_loss(self, batch: LabelledBatch) -> tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]:
        """(loss to minimize, real scores (B,), fake scores (B,), terms to log)."""
        real, labels = batch
        with torch.no_grad():
            fake = self(*self.generator_inputs(len(real), labels))  # fakes of the real chunk's classes
        (real_scores, real_aux), (fake_scores, fake_aux) = self.discriminate_real_and_fake(real, fake, labels)
        terms = {"loss/d": self.loss.d_loss(real_scores, fake_scores)}
        terms |= self.penalty_terms(lambda x: self.discriminate(x, labels)[0], real, fake)
        if self.loss.lecam_weight > 0:
            terms["loss/d_lecam"] = self.loss.lecam_term(
                real_scores, fake_scores, self._mean_scores(real_scores, fake_scores)
            )
        terms |= self.discriminator_terms(real_aux, fake_aux, labels)
        values = list(terms.values())
        total = sum(values[1:], values[0])  # sum(values) alone would add a 0 first: one op more
        return total, real_scores, fake_scores, terms

    def penalty_terms(self, discriminate: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """``{"loss/d_penalty": D's penalty}`` for an objective that has one (R1/R2, WGAN-GP), else ``{}``: an objective
        without one neither adds a zero to D's loss nor logs a flat curve. Every family's D loss takes its penalty here."""
        if not self.loss.penalizes_gradients:
            return {}
        return {"loss/d_penalty": self.loss.d_penalty(discriminate, real, fake)}

    def _mean_scores(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        """(mean real score, mean fake score) of this D update over all DDP ranks (one 2-element all-reduce), so
        that state kept from them (LeCam's anchors) is the same on every rank."""
        means = torch.stack([real_scores.detach().mean(), fake_scores.detach().mean()])
        if self._trainer is not None and self.trainer.world_size > 1:
            means = self.trainer.strategy.reduce(means, reduce_op="mean")
        return means

    def discriminate_real_and_fake(
        self, real: Tensor, fake: Tensor, labels: Tensor
    ) -> tuple[tuple[Tensor, tuple[Tensor, ...]], tuple[Tensor, tuple[Tensor, ...]]]:
        """D's (scores, auxiliary outputs) for a real chunk and its fakes. One forward over both, concatenated, when
        D has no batch statistics (then each example's output depends on that example alone: the same math, in
        one larger matrix product instead of two); two forwards when D has BatchNorm, which must see real and fake
        batches apart, and for a convolutional D on a CPU, where the doubled batch is slower (below). Dropout masks
        are drawn once for the 2B rows instead of twice for B."""
        if not self._scores_real_and_fake_together():
            # Each parametrized weight (spectral norm) computed once for both forwards: one power iteration per
            # D update, as with the one forward, instead of one per forward.
            with parametrize.cached():
                return self.discriminate(real, labels), self.discriminate(fake, labels)
        scores, aux = self.discriminate(torch.cat([real, fake]), torch.cat([labels, labels]))
        n = len(real)
        halves = [(a[:n], a[n:]) if isinstance(a, Tensor) and a.dim() and len(a) == 2 * n else (a, a) for a in aux]
        return (scores[:n], tuple(h[0] for h in halves)), (scores[n:], tuple(h[1] for h in halves))

    def _scores_real_and_fake_together(self) -> bool:
        """Whether D scores real and fake in one forward: no discriminator couples the examples of a batch
        (BatchNorm, or a layer marked ``batch_dependent``), and D is not convolutional on a CPU. There oneDNN's
        convolutions at 28x28 take longer for one batch of 2B than for two of B (the default five-conv D's forward
        and backward: 105 against 91 ms at B = 64, 157 against 127 ms at B = 100; docs/performance.md); an MLP D
        and any D on a GPU gain from the larger product."""
        if getattr(self, "_together", None) is None:
            networks = self.discriminator_networks()
            per_example = not any(couples_examples(net) for net in networks)
            convolutional = any(isinstance(m, nn.Conv2d) for net in networks for m in net.modules())
            self._together = per_example and not (convolutional and self.device.type == "cpu")
        return self._together

    def generator_loss(self, batch: LabelledBatch) -> tuple[Tensor, dict[str, Tensor]]:
        """(loss to minimize, terms to log), for as many fakes as there are real images in the chunk."""
        real, labels = batch
        fake = self(*self.generator_inputs(len(real), labels))
        if self.loss.relativistic:  # each fake against its real pair; no gradient flows through D(x) to G
            with parametrize.cached():  # one spectral-norm power iteration for both forwards, as in D's update
                fake_scores, fake_aux = self.discriminate(fake, labels)
                with torch.no_grad():
                    real_scores, _ = self.discriminate(real, labels)
            g_loss = self.loss.g_loss(fake_scores, real_scores)
        else:
            fake_scores, fake_aux = self.discriminate(fake, labels)
            g_loss = self.loss.g_loss(fake_scores)
        extra = self.generator_terms(fake_aux, labels)
        return sum(extra.values(), g_loss), {"loss/g": g_loss, **extra}

    # ---- the update order ------------------------------------------------------------------------------
    @contextmanager
    def _training(self, optimizers: list[LightningOptimizer]):
        """Gradients only for the parameters of ``optimizers`` (what Lightning's toggle_optimizer does for one
        optimizer, for any number of them); the others' ``requires_grad`` restored after."""
        own = {id(p) for opt in optimizers for group in opt.param_groups for p in group["params"]}
        frozen = [p for p in self.parameters() if p.requires_grad and id(p) not in own]
        for p in frozen:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in frozen:
                p.requires_grad_(True)

    def _discriminator_step(
        self, optimizers: dict[str, LightningOptimizer], batch: Batch, logs: bool
    ) -> dict[str, Tensor]:
        """D's update; its loss terms, and on logging steps the scores' statistics too."""
        phase = [optimizers[name] for name in self.phases["discriminator"]]
        with self._training(phase):
            d_total, real_scores, fake_scores, terms = self.discriminator_loss(batch)
            for optimizer in phase:
                optimizer.zero_grad()
            self.manual_backward(d_total)
            for optimizer in phase:
                self._step_without_counting(optimizer)
            for network in self.critic_networks():
                self.loss.constrain_discriminator(network)
        real_scores, fake_scores = real_scores.detach(), fake_scores.detach()
        stats = {name: value.detach() for name, value in terms.items()}
        if logs or self.loss.probabilistic:  # a probability every step: the collapse warning's
            stats |= {"D(x)": self.loss.d_output(real_scores).mean(), "D(G(z))": self.loss.d_output(fake_scores).mean()}
        if logs:
            stats |= self.loss.metrics(real_scores, fake_scores)
        if self.adaptive_augmenters():
            stats |= self._adapt_augmentation(real_scores, len(batch[0]), logs)
        self.after_discriminator_update(real_scores, fake_scores)
        return stats

    def _adapt_augmentation(self, real_scores: Tensor, batch_size: int, logs: bool) -> dict[str, Tensor]:
        """ADA's controller after a D update: r_t = E[sign(D(x) - boundary)] over this update's real images (D saw
        them augmented), averaged over the ranks, moves each adaptive augmenter's p. A family with two
        discriminators (CycleGAN, StackGAN) gives one signal from both Ds' real scores."""
        overfitting = torch.sign(real_scores - self.loss.decision_boundary).mean()
        if self.trainer.world_size > 1:
            overfitting = self.trainer.strategy.reduce(overfitting, reduce_op="mean")
        for augmenter in self.adaptive_augmenters():
            augmenter.adapt(overfitting, batch_size * self.trainer.world_size)
        if not logs:
            return {}
        return {"augment/r_t": overfitting, "augment/p": self.adaptive_augmenters()[0].p.detach().clone()}

    def _generator_step(self, optimizers: dict[str, LightningOptimizer], batch: Batch) -> dict[str, Tensor]:
        phase = [optimizers[name] for name in self.phases["generator"]]
        with self._training(phase):
            g_loss, terms = self.generator_loss(batch)
            for optimizer in phase:
                optimizer.zero_grad()
            self.manual_backward(g_loss)
            for optimizer in phase[1:]:
                self._step_without_counting(optimizer)
            phase[0].step()  # the one step that global_step counts: the generator update
        return {name: value.detach() for name, value in terms.items()}

    def _step_without_counting(self, optimizer: LightningOptimizer) -> None:
        """Step an optimizer without advancing ``global_step``.

        Lightning counts every optimizer step in ``global_step`` (Lightning issue 17958), which would make it
        (k + 1) per generator update. Stepping D through the strategy (which still applies the precision
        plugin's gradient scaling) and G through Lightning's wrapper makes ``global_step``, and so
        ``trainer.max_steps``, checkpoint intervals and the logged x-axis, count generator updates.
        """
        self.trainer.strategy.optimizer_step(optimizer.optimizer, closure=lambda: None)

    # ---- validation and test on real images ------------------------------------------------------------
    def track_accuracy(self, num_classes: int) -> None:
        """For variants whose D classifies (``class_logits``): val/accuracy and test/accuracy on real images."""
        self.val_accuracy = MulticlassAccuracy(num_classes, average="micro")
        self.test_accuracy = MulticlassAccuracy(num_classes, average="micro")

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self.score_real(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self.score_real(batch, "test")

    def score_real(self, batch: LabelledBatch, stage: str) -> None:
        """D's verdict on a batch of held-out real images, logged under ``<stage>/``."""
        images, labels = batch
        scores, aux = self.discriminate(images, labels)
        # D's verdict on held-out real images; far below D(x) on training images means D memorizes.
        self.log(f"{stage}/D(x)", self.loss.d_output(scores).mean(), sync_dist=True, batch_size=len(images))
        logits = self.class_logits(aux)
        if logits is not None:
            accuracy = getattr(self, f"{stage}_accuracy")
            accuracy(logits, labels)
            self.log(f"{stage}/accuracy", accuracy, prog_bar=stage == "val", batch_size=len(images))

    # ---- checkpoints -----------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["gan_class"] = f"{type(self).__module__}.{type(self).__qualname__}"
        checkpoint["loss_state"] = self.loss.state_dict()  # BEGAN's k_t: a resumed run goes on from it
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if hasattr(datamodule, "record"):  # what evaluate.py and sample.py rebuild the data from
            checkpoint["data"] = datamodule.record()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.loss.load_state_dict(checkpoint.get("loss_state", {}))

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, *args, **kwargs):
        """Rebuild the model a checkpoint was saved from, whichever variant it is: ``GAN.load_from_checkpoint``
        returns a ``ConditionalGAN`` for a cGAN checkpoint. Checkpoints saved before the package moved to
        ``models/`` + ``networks/`` load too (``ganlab.run.checkpoints`` maps their class paths)."""
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        saved = checkpoint.get("gan_class")
        variant = get_class(current_target(saved)) if saved else cls
        kwargs = legacy_hparams(checkpoint.get("hyper_parameters", {})) | kwargs
        if variant is not cls and issubclass(variant, cls):
            return variant.load_from_checkpoint(checkpoint_path, *args, **kwargs)
        return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)
