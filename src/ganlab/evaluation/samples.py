"""The evaluation of GANs that draw from noise: FID, KID, precision/recall, density/coverage, the classifier score
and class coverage of their samples; sample grids and latent interpolations. Class-conditional GANs add the
conditional accuracy and draw one row per class (``ConditionalSamples``).

    python evaluate.py ckpt_path=outputs/runs/<run>/checkpoints/last.ckpt num_samples=10000
    python sample.py ckpt_path=outputs/runs/<run>/checkpoints/last.ckpt labels=[0,7]   # labels: conditional GANs
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, ListConfig
from torch import Tensor, nn

from ganlab.evaluation.base import Evaluator, Grid, rows_table
from ganlab.metrics.conditional_accuracy import conditional_accuracy
from ganlab.metrics.scores import GANScores, real_batches


def slerp(start: Tensor, end: Tensor, weights: Tensor) -> Tensor:
    """Spherical interpolation, (R, D) x (R, D) x (S,) -> (R, S, D): the path a Gaussian prior's samples lie along
    (a straight line through the origin region would pass through unusually short latents)."""
    cos = torch.nn.functional.cosine_similarity(start, end, dim=1).clamp(-1 + 1e-7, 1 - 1e-7)  # (R,)
    omega = torch.acos(cos)[:, None, None]  # (R, 1, 1)
    t = weights[None, :, None]  # (1, S, 1)
    return (torch.sin((1 - t) * omega) * start[:, None] + torch.sin(t * omega) * end[:, None]) / torch.sin(omega)


def interpolation_latents(gan, rows: int, steps: int) -> Tensor:
    """(rows * steps, latent_dim): each row walks from one random latent to another."""
    start, end = gan.sample_latent(rows), gan.sample_latent(rows)  # (R, D)
    weights = torch.linspace(0, 1, steps, device=start.device)  # (S,)
    if gan.hparams.prior == "normal":
        path = slerp(start, end, weights)
    else:  # uniform prior: the box is convex, a straight line stays inside it
        path = start[:, None] + weights[None, :, None] * (end - start)[:, None]
    return path.reshape(rows * steps, -1)


class Samples(Evaluator):
    """A generator of noise, scored by its samples against real images in the domain classifier's features."""

    metric_names = ("val/fid", "val/best_fid", "val/kid", "val/coverage_kl", "val/modes", "val/classifier_score")

    def draw(self, z: Tensor, first: int) -> Tensor:
        """Images for the latents ``z`` (B, latent_dim), the ``first``-th to (first + B)-th of one series of
        draws (a conditional family takes the classes in turn along the series)."""
        return self.gan.generate(z=z)

    # ---- evaluate.py -------------------------------------------------------------------------------------
    def scores(self, datamodule: L.LightningDataModule, split: str) -> GANScores:
        """Scores on the ``split`` split's real images, ready for generated ones."""
        scores = GANScores.for_data(datamodule, **self.metrics).to(self.device)
        scores.add_real(real_batches(getattr(datamodule, f"{split}_dataloader")(), datamodule, self.device))
        return scores

    def evaluate(self, datamodule: L.LightningDataModule, cfg: DictConfig) -> dict[str, Any]:
        scores = self.scores(datamodule, cfg.reference)
        for first in range(0, cfg.num_samples, self.batch_size):
            z = self.gan.sample_latent(min(self.batch_size, cfg.num_samples - first))
            scores.update_fake(self.draw(z, first))
        return {
            "reference": f"{cfg.reference} split ({scores.num_real} images)",
            "num_samples": cfg.num_samples,
            **scores.compute(),
            "feature_extractor": scores.extractor,
            **self.family_results(scores.coverage.logits, cfg),
        }

    def family_results(self, classifier: nn.Module, cfg: DictConfig) -> dict[str, Any]:
        """What this family adds to the scores, read by the scores' own classifier (its logits): none here."""
        return {}

    def format(self, results: dict[str, Any]) -> str:
        return rows_table(self.rows(results))

    def rows(self, results: dict[str, Any]) -> list[tuple[str, str]]:
        num_classes = len(results["class_shares"])
        shares = (
            " ".join(f"{share:.2f}" for share in results["class_shares"])
            if num_classes <= 20
            else f"{num_classes} classes (metrics.json lists them)"
        )
        extractor = results["feature_extractor"]
        return [
            ("checkpoint", f"{results['checkpoint']} (step {results['global_step']})"),
            ("samples vs real", f"{results['num_samples']} generated vs {results['dataset']} {results['reference']}"),
            ("FID", f"{results['fid']:.3f}"),
            ("KID", f"{results['kid_mean']:.5f} +- {results['kid_std']:.5f}"),
            (
                "precision / recall",
                f"{results['precision']:.3f} / {results['recall']:.3f} (fidelity / diversity: samples on the real manifold / real images on theirs)",
            ),
            (
                "density / coverage",
                f"{results['density']:.3f} / {results['coverage']:.3f} (real balls per sample / k, share of real balls holding a sample)",
            ),
            (
                "classifier score",
                f"{results['classifier_score']:.3f} +- {results['classifier_score_std']:.3f} (Inception-Score analogue, max {len(results['class_shares'])})",
            ),
            ("class shares", shares),
            (
                "class coverage",
                f"KL from uniform {results['coverage_kl']:.4f}, {results['modes']}/{num_classes} classes drawn, "
                f"{results['classes_covered']} with at least half their share",
            ),
            ("features", f"{extractor['fid_kid_features']}; classifier test accuracy {extractor['test_accuracy']:.2%}"),
        ]

    # ---- sample.py ---------------------------------------------------------------------------------------
    def sample(self, datamodule: L.LightningDataModule, cfg: DictConfig, out_dir: Path) -> dict[str, Path]:
        """``samples.png`` (num_samples images) and ``interpolation.png`` (rows x steps)."""
        rows, steps = cfg.interpolation.rows, cfg.interpolation.steps
        nrow = cfg.nrow or math.ceil(math.sqrt(cfg.num_samples))
        z = self.gan.sample_latent(cfg.num_samples)
        return {
            "samples": Grid(self.draw(z, 0), nrow).save(out_dir / "samples.png"),
            "interpolation": Grid(self.draw(interpolation_latents(self.gan, rows, steps), 0), steps).save(
                out_dir / "interpolation.png"
            ),
        }

    # ---- training ----------------------------------------------------------------------------------------
    def validation_metrics(
        self, datamodule: L.LightningDataModule, num_samples: int, seed: int, rank: int, world_size: int
    ) -> dict[str, Tensor | float]:
        """``num_samples`` images from the same latents at every evaluation (training's RNG untouched), scored
        against the validation split. Under DDP every rank draws the same latents and scores its slice of them;
        torchmetrics gathers the slices in rank order, so the scored set is the one a single process scores."""
        if self.validation_scores is None:  # built once: the real features are computed once
            self.validation_scores = self.scores(datamodule, "val")
        scores = self.validation_scores
        scores.reset_fake()
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            z = self.gan.sample_latent(num_samples)
            start, stop = rank * num_samples // world_size, (rank + 1) * num_samples // world_size
            for first in range(start, stop, self.batch_size):
                last = min(first + self.batch_size, stop)
                scores.update_fake(self.draw(z[first:last], first))
            # KID's subsets and the classifier score's splits are random: the same draws on every rank (after the
            # sync every rank holds the same features), and subset sizes from the global counts.
            torch.manual_seed(seed + 1)
            values = scores.compute()
        return {
            "val/fid": values["fid"],
            "val/kid": values["kid_mean"],
            "val/classifier_score": values["classifier_score"],
            "val/coverage_kl": values["coverage_kl"],
            "val/modes": float(values["modes"]),  # classes (Stacked MNIST: modes) drawn at least once
            # Fidelity and variety apart (Kynkäänniemi et al. 2019): a G that repeats a few good images per
            # class keeps a fair FID but loses recall.
            "val/precision": values["precision"],
            "val/recall": values["recall"],
        }

    @property
    def validation_extractor(self) -> dict[str, Any] | None:
        """Which feature network the ``val/*`` scores were measured in (None before the first validation)."""
        return None if self.validation_scores is None else self.validation_scores.extractor

    def sample_grid(self, datamodule: L.LightningDataModule, nrow: int = 8) -> Grid:
        return Grid(self.draw(self.gan.fixed_noise, 0), nrow)


class ConditionalSamples(Samples):
    """A class-conditional generator: the classes in turn along every series of draws, the conditional accuracy
    (does each image show the class it was asked for?), one row per class in the grids."""

    sample_options = ("labels",)

    @property
    def num_classes(self) -> int:
        return self.gan.hparams.num_classes

    def draw(self, z: Tensor, first: int) -> Tensor:
        classes = torch.arange(first, first + len(z), device=z.device) % self.num_classes  # 0, 1, ..., N-1, 0, ...
        return self.gan.generate(z=z, labels=classes)

    def family_results(self, classifier: nn.Module, cfg: DictConfig) -> dict[str, Any]:
        per_class = max(1, cfg.num_samples // self.num_classes)
        return conditional_accuracy(
            lambda labels: self.gan.generate(labels=labels), classifier, self.num_classes, per_class, self.batch_size
        )

    def rows(self, results: dict[str, Any]) -> list[tuple[str, str]]:
        rows = super().rows(results)
        per_class = " ".join(f"{accuracy:.2f}" for accuracy in results["conditional_accuracy_per_class"])
        rows.insert(3, ("conditional accuracy", f"{results['conditional_accuracy']:.2%} (per class: {per_class})"))
        return rows

    def requested_classes(self, labels, num: int) -> Tensor:
        """(num,): the requested classes in turn, or every class in turn (one row per class)."""
        if labels is None:
            per_class = math.ceil(num / self.num_classes)
            return torch.arange(self.num_classes).repeat_interleave(per_class)[:num]
        requested = torch.tensor(list(labels) if isinstance(labels, (list, tuple, ListConfig)) else [labels])
        return requested.repeat(math.ceil(num / len(requested)))[:num]

    def sample(self, datamodule: L.LightningDataModule, cfg: DictConfig, out_dir: Path) -> dict[str, Path]:
        """``samples.png``: one row per class (or the ``labels=`` asked for); ``interpolation.png``: each row keeps
        one class while z moves."""
        labels, rows, steps = cfg.get("labels"), cfg.interpolation.rows, cfg.interpolation.steps
        nrow = cfg.nrow or (
            math.ceil(cfg.num_samples / self.num_classes) if labels is None else math.ceil(math.sqrt(cfg.num_samples))
        )
        row_classes = (
            self.requested_classes(labels, rows) if labels is not None else torch.arange(rows) % self.num_classes
        )
        latents = interpolation_latents(self.gan, rows, steps)
        return {
            "samples": Grid(self.gan.generate(labels=self.requested_classes(labels, cfg.num_samples)), nrow).save(
                out_dir / "samples.png"
            ),
            "interpolation": Grid(
                self.gan.generate(z=latents, labels=row_classes.repeat_interleave(steps)), steps
            ).save(out_dir / "interpolation.png"),
        }

    def sample_grid(self, datamodule: L.LightningDataModule, nrow: int = 8) -> Grid:
        """One row per class, the same noise down each column (the model's fixed noise and labels)."""
        images = self.gan.generate(z=self.gan.fixed_noise, labels=self.gan.fixed_labels)
        return Grid(images, self.gan.hparams.samples_per_class)
