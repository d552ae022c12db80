"""The interface every GAN family's evaluation keeps, and what its implementations share.

A family names its evaluator (``GAN.evaluator_class``); ``evaluate.py``, ``sample.py`` and the training callbacks
(``callbacks/fid.py``, ``callbacks/sample_grid.py``) ask that one object and never ask what kind of model they
hold. As StyleGAN2-ADA registers its metrics and each diffusers pipeline owns how it samples, the evaluator owns
how its family is scored and drawn:

- ``evaluate(datamodule, cfg)``: the scores of ``python evaluate.py`` (a flat dict, written to metrics.json by
  ``ganlab.evaluate``), and ``format(results)``: the table it prints;
- ``sample(datamodule, cfg, out_dir)``: the PNGs of ``python sample.py``;
- ``validation_metrics(datamodule, ...)``: the ``val/*`` scores logged during training, and ``metric_names``:
  those shown in TensorBoard's HPARAMS tab;
- ``sample_grid(datamodule)``: the grid of the run's fixed inputs, drawn at every validation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import torch
from omegaconf import DictConfig
from torch import Tensor
from torchvision.utils import make_grid, save_image


@dataclass
class Grid:
    """Images to show as one grid: (N, C, H, W) in [-1, 1], ``nrow`` a row, with an optional caption text."""

    images: Tensor
    nrow: int
    text: str | None = None

    def tile(self) -> Tensor:
        """(3, H', W') in [0, 1]: the images tiled, as PNGs and TensorBoard show them."""
        return make_grid(self.images, nrow=self.nrow, normalize=True, value_range=(-1, 1), padding=2)

    def save(self, path: Path) -> Path:
        save_image(self.tile(), path)
        return path


def rows_table(rows: list[tuple[str, str]]) -> str:
    """Name/value rows as an aligned two-column table."""
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


class Evaluator:
    """One family's evaluation, bound to a model. Subclasses implement every method below."""

    #: The ``val/*`` metrics this family logs during training (TensorBoard's HPARAMS tab lists them).
    metric_names: ClassVar[tuple[str, ...]] = ()
    #: The options of ``sample.py`` this family takes besides the common ones (``labels``, ``caption``).
    sample_options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, gan: L.LightningModule, metrics: Mapping[str, Any] | None = None):
        self.gan = gan
        self.metrics = dict(metrics or {})
        # The scores of the validations during training: built at the first, the real images' features kept.
        self.validation_scores: torch.nn.Module | None = None

    @property
    def device(self) -> torch.device:
        return self.gan.device

    @property
    def batch_size(self) -> int:
        return int(self.metrics.get("batch_size", 500))

    def scored_data(self, datamodule: L.LightningDataModule) -> list[L.LightningDataModule]:
        """The datasets whose domain classifiers the scores read (their features: ``ganlab.metrics.classifier``)."""
        return [datamodule]

    # ---- evaluate.py -------------------------------------------------------------------------------------
    def evaluate(self, datamodule: L.LightningDataModule, cfg: DictConfig) -> dict[str, Any]:
        """Scores against ``cfg.reference``'s split, as a flat dict (metrics.json); ``fid`` among them."""
        raise NotImplementedError

    def format(self, results: dict[str, Any]) -> str:
        """``results`` as the table ``evaluate.py`` prints."""
        raise NotImplementedError

    # ---- sample.py ---------------------------------------------------------------------------------------
    def sample(self, datamodule: L.LightningDataModule, cfg: DictConfig, out_dir: Path) -> dict[str, Path]:
        """The PNGs (and any text) of ``sample.py`` under ``out_dir``, by name."""
        raise NotImplementedError

    # ---- training ----------------------------------------------------------------------------------------
    def validation_metrics(
        self, datamodule: L.LightningDataModule, num_samples: int, seed: int, rank: int, world_size: int
    ) -> dict[str, Tensor | float]:
        """``val/*`` scores on the validation split, the same on every rank (``val/fid`` among them)."""
        raise NotImplementedError

    @property
    def validation_extractor(self) -> dict[str, Any] | None:
        """Which feature network(s) the ``val/*`` scores were measured in (None before the first validation)."""
        raise NotImplementedError

    def sample_grid(self, datamodule: L.LightningDataModule, nrow: int = 8) -> Grid:
        """The grid of the model's fixed inputs (the same at every validation and across a resume); ``nrow``
        where the family leaves the row length open."""
        raise NotImplementedError
