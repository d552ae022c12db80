"""The evaluation of translators between two unpaired domains (``model=cyclegan``): every image of a split of
both domains translated both ways and back, scored by ``ganlab.metrics.translation`` (label preservation, FID
against the real target domain, cycle error) beside the untranslated baseline; grids of sources, their
translations and their reconstructions.

    python evaluate.py ckpt_path=outputs/runs/<run>/checkpoints/last.ckpt     # label preservation, FID, cycle error
    python sample.py ckpt_path=outputs/runs/<run>/checkpoints/last.ckpt       # translation_ab.png, translation_ba.png
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig
from torch import Tensor

from ganlab.evaluation.base import Evaluator, Grid, rows_table
from ganlab.metrics.translation import TranslationScores

DIRECTIONS = ("ab", "ba")


class Translations(Evaluator):
    """A pair of translators, A -> B and B -> A (``gan.translate(images, direction)``)."""

    metric_names = (
        "val/fid",
        "val/best_fid",
        "val/label_preservation_ab",
        "val/label_preservation_ba",
        "val/cycle_error_a",
        "val/cycle_error_b",
    )

    def scored_data(self, datamodule: L.LightningDataModule) -> list[L.LightningDataModule]:
        return [datamodule.domain_a, datamodule.domain_b]  # each domain's classifier reads translations into it

    def __init__(self, gan: L.LightningModule, metrics: Mapping[str, Any] | None = None):
        super().__init__(gan, metrics)
        self._scores_by_split: dict[str, TranslationScores] = {}

    def batches(self, datamodule: L.LightningDataModule, split: str):
        """(A images, A labels, B images, B labels) of a split, on the device, images in [-1, 1]."""
        for batch in getattr(datamodule, f"{split}_dataloader")():
            yield datamodule.on_after_batch_transfer(tuple(part.to(self.device) for part in batch), 0)

    def scores(self, datamodule: L.LightningDataModule, split: str) -> TranslationScores:
        """Every image of ``split`` in both domains translated both ways, and scored."""
        scores = self._scores_by_split.get(split)
        if scores is None:  # the real features of a split are computed once
            scores = TranslationScores.for_data(datamodule, **self.metrics).to(self.device)
            scores.add_real(self.batches(datamodule, split))
            self._scores_by_split[split] = scores
        scores.reset_translated()
        scores.add_translated(
            lambda a: self.gan.translate(a, "ab"),
            lambda b: self.gan.translate(b, "ba"),
            self.batches(datamodule, split),
        )
        return scores

    # ---- evaluate.py -------------------------------------------------------------------------------------
    def evaluate(self, datamodule: L.LightningDataModule, cfg: DictConfig) -> dict[str, Any]:
        datamodule.setup("test")
        scores = self.scores(datamodule, cfg.reference)
        num, values = scores.num_real, scores.compute()
        return {
            "reference": f"{cfg.reference} splits ({num['ba']} {datamodule.domain_a.name} images as A, {num['ab']} {datamodule.domain_b.name} images as B)",
            "domains": [datamodule.domain_a.name, datamodule.domain_b.name],
            **values,
            "fid": values["fid_ab"],  # what a sweep minimizes: FID of A -> B
            "feature_extractor": scores.extractors,
        }

    def format(self, results: dict[str, Any]) -> str:
        name_a, name_b = results["domains"]
        extractors = results["feature_extractor"]
        rows = [("checkpoint", f"{results['checkpoint']} (step {results['global_step']})")]
        rows.append(("images", f"every image of the {results['reference']}"))
        for direction, source, target in (("ab", name_a, name_b), ("ba", name_b, name_a)):
            rows.append(
                (
                    f"label preservation {source} -> {target}",
                    f"{results[f'label_preservation_{direction}']:.2%} (untranslated: {results[f'baseline_label_preservation_{direction}']:.2%}), by the {target} classifier",
                )
            )
            per_class = " ".join(f"{share:.2f}" for share in results[f"label_preservation_{direction}_per_class"])
            baseline = " ".join(
                f"{share:.2f}" for share in results[f"baseline_label_preservation_{direction}_per_class"]
            )
            rows.append(("  per source class", f"{per_class} (untranslated: {baseline})"))
        for direction, source, target in (("ab", name_a, name_b), ("ba", name_b, name_a)):
            rows.append(
                (
                    f"FID {source} -> {target}",
                    f"{results[f'fid_{direction}']:.3f} (untranslated: {results[f'baseline_fid_{direction}']:.3f}), against real {target}",
                )
            )
        rows += [
            (
                "cycle error",
                f"A -> B -> A {results['cycle_error_a']:.4f}, B -> A -> B {results['cycle_error_b']:.4f} (mean |x - x'| on [-1, 1])",
            ),
            (
                "classifiers",
                f"{extractors['a']['key']} ({extractors['a']['test_accuracy']:.2%} test), {extractors['b']['key']} ({extractors['b']['test_accuracy']:.2%} test)",
            ),
        ]
        return rows_table(rows)

    # ---- grids -------------------------------------------------------------------------------------------
    def translation_rows(self, sources: Tensor, direction: str, nrow: int) -> Tensor:
        """(3 * N, C, H, W): for each group of ``nrow`` sources, a row of them, their translations, their
        reconstructions."""
        rows = []
        for group in sources.split(nrow):
            translated = self.gan.translate(group, direction)
            rows += [group.to(self.device), translated, self.gan.translate(translated, direction[::-1])]
        return torch.cat(rows)

    @staticmethod
    def first_images(datamodule: L.LightningDataModule, domain: str, split: str, num: int) -> Tensor:
        """The first ``num`` images of a domain's split, scaled as in training."""
        dataset = getattr(getattr(datamodule, f"domain_{domain}"), f"{split}_set")
        return datamodule.on_after_batch_transfer((dataset.tensors[0][:num],), 0)[0]

    def sample(self, datamodule: L.LightningDataModule, cfg: DictConfig, out_dir: Path) -> dict[str, Path]:
        """``translation_ab.png`` and ``translation_ba.png``: the first ``num_samples`` test images of each domain,
        in groups of three rows (source, translated, reconstructed)."""
        datamodule.setup("test")
        nrow = cfg.nrow or math.ceil(math.sqrt(cfg.num_samples))
        paths = {}
        for direction in DIRECTIONS:
            sources = self.first_images(datamodule, direction[0], "test", cfg.num_samples)
            grid = Grid(self.translation_rows(sources, direction, nrow), nrow)
            paths[f"translation_{direction}"] = grid.save(out_dir / f"translation_{direction}.png")
        return paths

    # ---- training ----------------------------------------------------------------------------------------
    def validation_metrics(
        self, datamodule: L.LightningDataModule, num_samples: int, seed: int, rank: int, world_size: int
    ) -> dict[str, Tensor | float]:
        """Every validation image of each domain translated; ``val/fid`` is FID of A -> B, so the best-FID
        checkpoint keeps the best translator into domain B."""
        self.validation_scores = self.scores(datamodule, "val")
        values = self.validation_scores.compute()
        scalars = {name: value for name, value in values.items() if not name.endswith("_per_class")}
        return {f"val/{name}": value for name, value in scalars.items()} | {"val/fid": values["fid_ab"]}

    @property
    def validation_extractor(self) -> dict[str, Any] | None:
        return None if self.validation_scores is None else self.validation_scores.extractors

    def sample_grid(self, datamodule: L.LightningDataModule, nrow: int = 8) -> Grid:
        """The first validation images of each domain, translated and reconstructed (the same at every step)."""
        nrow = self.gan.hparams.samples_per_row
        rows = [
            self.translation_rows(self.first_images(datamodule, d[0], "val", nrow).to(self.device), d, nrow)
            for d in DIRECTIONS
        ]
        return Grid(torch.cat(rows), nrow)
