"""Schemas of the config groups users type into: a misspelled key or a wrong type fails when Hydra composes the
config (``Key 'batch_sise' not in 'DataSchema'``), not an hour into a run.

Hydra's "structured config as schema" pattern: each dataclass is stored in Hydra's ConfigStore under
``schema/<group>/<name>``, and a YAML option names it first in its defaults list, so the YAML fills in the
schema's values and nothing else::

    # conf/loss/lsgan.yaml
    defaults:
      - /schema/loss/LeastSquaresGAN@_here_
      - _self_

A default is written once. The schemas of the model families and of the losses are read from their classes'
signatures (``ganlab.config.family_schemas``): ``schema/model/<module>`` for the family defined in ``ganlab/models/<module>.py``,
``schema/loss/<ClassName>`` for each objective of ``ganlab/losses.py``, so a new family or loss needs no line
here, and its YAML keeps only interpolations, network choices and deliberate departures. Bounds that types
cannot say (``lr > 0``) sit beside the default (``Annotated[float, Bound(above=0)]``, ``ganlab.config.bounds``)
or, in the hand-written schemas below (trainer, optimizers, data), in the field's metadata;
``ganlab.config.checks.check_bounds`` enforces them before training. Generator and discriminator configs are
open dicts: their classes' own signatures check them when the model is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from ganlab.config.bounds import Bound


def above(bound: float, default: Any = MISSING) -> Any:
    """A field whose value must be > ``bound``."""
    return field(default=default, metadata=Bound(above=bound).metadata())


def below(bound: float, default: Any = MISSING) -> Any:
    """A field whose value must be < ``bound``."""
    return field(default=default, metadata=Bound(below=bound).metadata())


def at_least(bound: float, default: Any = MISSING) -> Any:
    """A field whose value must be >= ``bound``."""
    return field(default=default, metadata=Bound(at_least=bound).metadata())


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
    on_device: bool = True  # on a GPU: the training split resident there, batches gathered without a copy


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
    cs.store(group="schema/optimizer", name="adam", node=AdamPairSchema)
    cs.store(group="schema/optimizer", name="rmsprop", node=RMSpropPairSchema)
    cs.store(group="schema/data", name="idx", node=DataSchema)
    cs.store(group="schema/data", name="two_domain", node=TwoDomainDataSchema)
    cs.store(group="schema/data", name="captioned", node=CaptionedDataSchema)
    cs.store(group="schema/paths", name="default", node=PathsSchema)


register()
