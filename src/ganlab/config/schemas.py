"""Schemas of the config groups users type into: a misspelled key or a wrong type fails when Hydra composes the
config (``Key 'batch_sise' not in 'DataSchema'``), not an hour into a run.

Hydra's "structured config as schema" pattern: each dataclass is stored in Hydra's ConfigStore under
``schema/<group>/<name>``, and a YAML option names it first in its defaults list, so the YAML fills in the
schema's values and nothing else::

    # conf/loss/lsgan.yaml
    defaults:
      - /schema/loss/lsgan@_here_
      - _self_

Bounds that types cannot say (``lr > 0``, ``batch_size >= 1``) sit in the field's metadata, next to the type;
``ganlab.config.checks.check_bounds`` enforces them before training.

A new option plugs in the same way: a dataclass here (subclassing the group's base schema when it shares its
keys), a ``store(...)`` line in ``register``, and the defaults line in its YAML. Generator and discriminator
configs are open dicts: their classes' own signatures check them when the model is built. A YAML without the
defaults line still works, unchecked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


def above(bound: float, default: Any = MISSING) -> Any:
    """A field whose value must be > ``bound``."""
    return field(default=default, metadata={"above": bound})


def below(bound: float, default: Any = MISSING) -> Any:
    """A field whose value must be < ``bound``."""
    return field(default=default, metadata={"below": bound})


def at_least(bound: float, default: Any = MISSING) -> Any:
    """A field whose value must be >= ``bound``."""
    return field(default=default, metadata={"at_least": bound})


# ---- trainer ---------------------------------------------------------------------------------------------
@dataclass
class TrainerSchema:
    """The lightning.Trainer arguments this project uses; ``Any`` where Lightning takes several types."""

    _target_: str = "lightning.Trainer"
    default_root_dir: str | None = None
    accelerator: str = "cpu"
    devices: Any = 1  # a count, a list of device ids, or "auto"
    num_nodes: int = at_least(1, 1)
    strategy: Any = "auto"
    precision: Any = "32-true"
    sync_batchnorm: bool = False
    max_steps: int = at_least(-1, 2000)
    max_epochs: int | None = at_least(-1, -1)
    max_time: str | None = None  # "DD:HH:MM:SS": stop (and checkpoint) before a cluster's time limit
    check_val_every_n_epoch: int | None = at_least(1, 1)
    val_check_interval: Any = None
    log_every_n_steps: int = at_least(1, 10)
    deterministic: Any = False  # true, false or "warn"
    benchmark: bool | None = None
    use_distributed_sampler: bool = False
    limit_train_batches: Any = 1.0  # a fraction, or a number of batches
    limit_val_batches: Any = 1.0
    limit_test_batches: Any = 1.0
    num_sanity_val_steps: int = at_least(-1, 2)
    enable_model_summary: bool = True
    enable_progress_bar: bool = True
    enable_checkpointing: bool = True
    detect_anomaly: bool = False
    fast_dev_run: Any = False
    plugins: Any = (
        None  # conf/trainer/default.yaml: atomic checkpoint writes (ganlab.run.checkpoints.AtomicCheckpointIO)
    )


# ---- top level -------------------------------------------------------------------------------------------
@dataclass
class TrainSchema:
    """conf/train.yaml. Groups are ``Any`` here: each group's own YAML options choose their schema. The trainer
    is typed here instead, because two groups write it (accelerator, then trainer)."""

    model: Any = MISSING
    loss: Any = MISSING
    optimizer: Any = MISSING
    data: Any = MISSING
    trainer: TrainerSchema = field(default_factory=lambda: TrainerSchema())
    paths: Any = MISSING
    callbacks: Any = None
    logger: Any = None
    metrics: Any = None
    seed: int | None = 0
    test: bool = False
    ckpt_path: str | None = None
    optimized_metric: str | None = None
    verbose: bool = False


# ---- model -----------------------------------------------------------------------------------------------
@dataclass
class ModelSchema:
    """What every GAN variant takes: the two networks (open dicts) and the latent space."""

    _target_: str = MISSING
    latent_dim: int = at_least(1, 100)
    prior: str = "normal"
    generator: dict[str, Any] = field(default_factory=dict)
    discriminator: dict[str, Any] = field(default_factory=dict)


@dataclass
class GANSchema(ModelSchema):
    """ganlab.models.gan.GAN: conf/model/{mlp,dcgan}.yaml."""

    _target_: str = "ganlab.models.gan.GAN"
    num_fixed_samples: int = at_least(1, 64)


@dataclass
class DCGANSchema(GANSchema):
    """conf/model/dcgan.yaml: the GAN plus DiffAugment (``model.augment=[translation,cutout]``)."""

    augment: list[str] | None = None


@dataclass
class ConditionalGANSchema(ModelSchema):
    """ganlab.models.cgan.ConditionalGAN: conf/model/cgan.yaml."""

    _target_: str = "ganlab.models.cgan.ConditionalGAN"
    num_classes: int = at_least(1, 10)
    samples_per_class: int = at_least(1, 10)


@dataclass
class ACGANSchema(ConditionalGANSchema):
    """ganlab.models.acgan.ACGAN: conf/model/acgan.yaml."""

    _target_: str = "ganlab.models.acgan.ACGAN"
    class_weight: float = at_least(0.0, 1.0)
    fake_class_weight: float = at_least(0.0, 1.0)


@dataclass
class BEGANSchema(GANSchema):
    """ganlab.models.began.BEGAN: conf/model/began.yaml."""

    _target_: str = "ganlab.models.began.BEGAN"
    latent_dim: int = at_least(1, 64)
    prior: str = "uniform"


@dataclass
class SemiSupervisedGANSchema(GANSchema):
    """ganlab.models.sgan.SemiSupervisedGAN: conf/model/sgan.yaml."""

    _target_: str = "ganlab.models.sgan.SemiSupervisedGAN"
    num_classes: int = at_least(1, 10)
    unlabelled_weight: float = at_least(0.0, 0.5)
    feature_matching: bool = True
    prior: str = "uniform"


@dataclass
class CycleGANSchema(ModelSchema):
    """ganlab.models.cyclegan.CycleGAN: conf/model/cyclegan.yaml. No latent space: latent_dim and prior are unused."""

    _target_: str = "ganlab.models.cyclegan.CycleGAN"
    lambda_cycle: float = at_least(0.0, 10.0)
    lambda_identity: float = at_least(0.0, 0.5)
    pool_size: int = at_least(0, 50)
    lr_decay_start: int | None = at_least(0, None)
    samples_per_row: int = at_least(1, 8)


@dataclass
class StackGANSchema(ModelSchema):
    """ganlab.models.stackgan.StackGAN: conf/model/stackgan.yaml. The caption encoder's config is an open dict."""

    _target_: str = "ganlab.models.stackgan.StackGAN"
    latent_dim: int = at_least(1, 64)
    caption_classes: str = "mnist"
    held_out: list[str] = field(default_factory=list)
    vocabulary: list[str] | None = None  # filled from the caption grammar; checkpoints keep it
    kl_weight: float = at_least(0.0, 0.02)
    attribute_weight: float = at_least(0.0, 1.0)
    caption_attribute_weight: float = at_least(0.0, 1.0)
    text_lr_scale: float = above(0.0, 10.0)
    num_fixed_captions: int = at_least(1, 10)
    samples_per_caption: int = at_least(1, 4)
    text_encoder: dict[str, Any] = field(default_factory=dict)


# ---- loss ------------------------------------------------------------------------------------------------
@dataclass
class LossSchema:
    """The objectives with no parameter of their own (gan, nsgan, hinge)."""

    _target_: str = MISSING
    discriminator_steps: int = at_least(1, 1)
    r1_gamma: float = at_least(0.0, 0.0)  # zero-centred R1 penalty on real images, gamma / 2 * E||grad D(x)||^2; 0: off
    r1_every: int = at_least(1, 1)  # lazy R1: every k-th discriminator update, weighted k times


@dataclass
class LeastSquaresSchema(LossSchema):
    a: float = 0.0
    b: float = 1.0
    c: float = 1.0


@dataclass
class WassersteinGPSchema(LossSchema):
    gp_weight: float = at_least(0.0, 10.0)
    discriminator_steps: int = at_least(1, 5)


@dataclass
class WassersteinClipSchema(LossSchema):
    clip_value: float = above(0.0, 0.01)
    discriminator_steps: int = at_least(1, 5)


@dataclass
class BoundaryEquilibriumSchema(LossSchema):
    gamma: float = above(0.0, 0.75)
    lambda_k: float = at_least(0.0, 0.001)
    k: float = at_least(0.0, 0.0)


# ---- optimizer -------------------------------------------------------------------------------------------
@dataclass
class AdamSchema:
    _target_: str = "torch.optim.Adam"
    lr: float = above(0.0, 2.0e-4)
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    eps: float = above(0.0, 1.0e-8)
    weight_decay: float = at_least(0.0, 0.0)
    fused: bool | None = None  # one kernel for all parameters (CPU and GPU); None: torch's per-parameter loop


@dataclass
class RMSpropSchema:
    _target_: str = "torch.optim.RMSprop"
    lr: float = above(0.0, 5.0e-5)
    alpha: float = 0.99
    eps: float = above(0.0, 1.0e-8)
    weight_decay: float = at_least(0.0, 0.0)
    momentum: float = at_least(0.0, 0.0)


@dataclass
class AdamPairSchema:
    """One optimizer for D and one for G."""

    discriminator: AdamSchema = field(default_factory=AdamSchema)
    generator: AdamSchema = field(default_factory=AdamSchema)
    scale_lr: str = (
        "none"  # none, linear or sqrt in the number of DDP ranks (the global batch is world_size x data.batch_size)
    )


@dataclass
class RMSpropPairSchema:
    discriminator: RMSpropSchema = field(default_factory=RMSpropSchema)
    generator: RMSpropSchema = field(default_factory=RMSpropSchema)
    scale_lr: str = (
        "none"  # none, linear or sqrt in the number of DDP ranks (the global batch is world_size x data.batch_size)
    )


# ---- data ------------------------------------------------------------------------------------------------
@dataclass
class DataSchema:
    """The IDX datamodules of ganlab.data (conf/data/*.yaml)."""

    _target_: str = MISSING
    root: str = "data"
    fallback: bool = True  # other copies of the data when root holds none (conf/data: only for the default root)
    batch_size: int = at_least(1, 64)
    val_fraction: float = field(default=0.1, metadata={"above": 0.0, "below": 1.0})
    seed: int = 0
    download: bool = True
    image_shape: list[int] = field(default_factory=lambda: [1, 28, 28])
    num_classes: int = at_least(1, 10)
    labels_per_class: int | None = at_least(1, None)


@dataclass
class TwoDomainDataSchema:
    """Two unpaired domains for translation (conf/data/digits_to_mnist.yaml); each domain's own config is an open dict."""

    _target_: str = MISSING
    batch_size: int = at_least(1, 8)
    seed: int = 0
    download: bool = True
    image_shape: list[int] = field(default_factory=lambda: [1, 28, 28])
    num_classes: int = at_least(1, 10)
    domain_a: dict[str, Any] = field(default_factory=dict)
    domain_b: dict[str, Any] = field(default_factory=dict)


@dataclass
class CaptionedDataSchema:
    """Images with captions (conf/data/captioned_*.yaml); the images' own datamodule config is an open dict."""

    _target_: str = MISSING
    caption_classes: str = "mnist"
    held_out: list[str] = field(default_factory=list)
    drop: float = field(default=0.15, metadata={"at_least": 0.0, "below": 1.0})
    batch_size: int = at_least(1, 64)
    seed: int = 0
    download: bool = True
    image_shape: list[int] = field(default_factory=lambda: [1, 28, 28])
    num_classes: int = at_least(1, 10)
    images: dict[str, Any] = field(default_factory=dict)


@dataclass
class PathsSchema:
    data_dir: str = "data"
    output_dir: str = MISSING


def register() -> None:
    """Store the schemas in Hydra's ConfigStore (before composing: train.py imports this through ganlab.train)."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainSchema)
    cs.store(group="schema/model", name="gan", node=GANSchema)
    cs.store(group="schema/model", name="dcgan", node=DCGANSchema)
    cs.store(group="schema/model", name="cgan", node=ConditionalGANSchema)
    cs.store(group="schema/model", name="acgan", node=ACGANSchema)
    cs.store(group="schema/model", name="sgan", node=SemiSupervisedGANSchema)
    cs.store(group="schema/model", name="began", node=BEGANSchema)
    cs.store(group="schema/model", name="cyclegan", node=CycleGANSchema)
    cs.store(group="schema/model", name="stackgan", node=StackGANSchema)
    cs.store(group="schema/loss", name="base", node=LossSchema)
    cs.store(group="schema/loss", name="lsgan", node=LeastSquaresSchema)
    cs.store(group="schema/loss", name="wgan_gp", node=WassersteinGPSchema)
    cs.store(group="schema/loss", name="wgan", node=WassersteinClipSchema)
    cs.store(group="schema/loss", name="began", node=BoundaryEquilibriumSchema)
    cs.store(group="schema/optimizer", name="adam", node=AdamPairSchema)
    cs.store(group="schema/optimizer", name="rmsprop", node=RMSpropPairSchema)
    cs.store(group="schema/data", name="idx", node=DataSchema)
    cs.store(group="schema/data", name="two_domain", node=TwoDomainDataSchema)
    cs.store(group="schema/data", name="captioned", node=CaptionedDataSchema)
    cs.store(group="schema/paths", name="default", node=PathsSchema)


register()
