"""The evaluation of GANs with a structured latent code (``model=infogan``): everything ``Samples`` scores, and
how well the categorical code captures the data's classes without a label (the error after the best one-to-one
matching of code values to classes, read by the domain classifier); grids of rows = code value, columns = a sweep
of one continuous code.

    python evaluate.py ckpt_path=outputs/runs/<run>/checkpoints/last.ckpt   # + categorical-code error, matching
    python sample.py ckpt_path=outputs/runs/<run>/checkpoints/last.ckpt     # + codes_<j>.png per continuous code
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from ganlab.evaluation.base import Grid
from ganlab.evaluation.samples import Samples
from ganlab.metrics.categorical_code import code_confusion, code_scores

VALIDATION_PER_CODE = 100  # images a code value for val/code_error


class Codes(Samples):
    """A generator of noise and codes (``gan.code_latent``, ``gan.code_grid``)."""

    metric_names = (*Samples.metric_names, "val/code_error")

    def code_error(self, classifier, per_code: int, seed: int) -> dict[str, Any]:
        """The categorical code's scores on ``per_code`` images a code value, from fixed latents (``seed``)."""
        gan = self.gan
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            confusion = code_confusion(
                lambda codes: gan.generate(z=gan.code_latent(codes)),
                classifier,
                gan.hparams.num_categories,
                classifier.num_features,
                per_code,
                self.batch_size,
            )
        return code_scores(confusion)

    def family_results(self, classifier: nn.Module, cfg: DictConfig) -> dict[str, Any]:
        per_code = max(1, cfg.num_samples // self.gan.hparams.num_categories)
        return self.code_error(classifier, per_code, cfg.seed)

    def rows(self, results: dict[str, Any]) -> list[tuple[str, str]]:
        rows = super().rows(results)
        per_code = " ".join(f"{accuracy:.2f}" for accuracy in results["code_accuracy_per_code"])
        matching = " ".join(str(c) for c in results["code_matching"])
        rows.insert(
            3,
            (
                "categorical code",
                f"error {results['code_error']:.2%} after the best matching of code values to classes "
                f"(classes of codes 0..{len(results['code_matching']) - 1}: {matching}; share in its class: {per_code})",
            ),
        )
        return rows

    def code_grids(self, columns: int, noise: Tensor) -> list[Grid]:
        """One grid per continuous code: row i is code value i, the columns sweep that code over [-1, 1]."""
        gan = self.gan
        return [
            Grid(gan.generate(z=gan.code_grid(columns, noise, code)), columns)
            for code in range(max(1, gan.hparams.num_continuous))
        ]

    def sample(self, datamodule: L.LightningDataModule, cfg: DictConfig, out_dir: Path) -> dict[str, Path]:
        """``samples.png`` and ``interpolation.png`` as any generator, and ``codes_<j>.png``: rows = code value,
        columns = continuous code j from -1 to 1, one noise vector throughout."""
        paths = super().sample(datamodule, cfg, out_dir)
        noise = self.gan.code_latent(torch.zeros(1, dtype=torch.long))[:, : self.gan.noise_dim]
        for code, grid in enumerate(self.code_grids(cfg.interpolation.steps, noise)):
            paths[f"codes_{code}"] = grid.save(out_dir / f"codes_{code}.png")
        return paths

    def validation_metrics(
        self, datamodule: L.LightningDataModule, num_samples: int, seed: int, rank: int, world_size: int
    ) -> dict[str, Tensor | float]:
        values = super().validation_metrics(datamodule, num_samples, seed, rank, world_size)
        classifier = self.validation_scores.coverage.logits
        return values | {"val/code_error": self.code_error(classifier, VALIDATION_PER_CODE, seed)["code_error"]}

    def sample_grid(self, datamodule: L.LightningDataModule, nrow: int = 8) -> Grid:
        """Rows = code value, columns = a sweep of continuous code 0 (the model's fixed grid latents)."""
        return Grid(self.gan.generate(z=self.gan.fixed_noise), self.gan.hparams.grid_columns)
