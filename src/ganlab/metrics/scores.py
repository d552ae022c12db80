"""GAN scores through torchmetrics: FID and KID in a feature space, precision, recall, density and coverage in the
same space (``ganlab.metrics.manifold``), an Inception-Score analogue and class coverage.

All take G's output, (B, 1, H, W) images in [-1, 1]. Real images are fed once and kept (``reset_real_features``
is off), so scoring a generator again only costs its own samples. Metric states sync across DDP ranks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance

from ganlab.metrics.classifier import extractor_for
from ganlab.metrics.features import ClassifierFeatures, ClassifierLogits, ClassifierOutputs, InceptionFeatures
from ganlab.metrics.manifold import ManifoldScores
from ganlab.metrics.modes import kl_from_uniform

BACKBONES = ("classifier", "inception")


class ClassCoverage(Metric):
    """Share of each class among the classifier's predictions, and its KL divergence from uniform.

    A generator that drops modes shows it here first: KL = 0 when every class is equally frequent and
    log(num_classes) when one class takes everything. ``classes_covered`` counts classes with at least half
    their fair share (1 / num_classes).
    """

    full_state_update = False

    def __init__(self, logits: nn.Module, num_classes: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.logits = logits
        self.num_classes = num_classes
        self.add_state("counts", torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, images: Tensor) -> None:
        predictions = self.logits(images).argmax(1)  # (B,)
        self.counts += torch.bincount(predictions, minlength=self.num_classes)

    def compute(self) -> dict[str, Any]:
        shares = self.counts.double() / self.counts.sum()  # (num_classes,)
        present = shares > 0
        return {
            "class_shares": shares.tolist(),
            "coverage_kl": kl_from_uniform(shares).item(),
            "classes_covered": int((shares >= 0.5 / self.num_classes).sum()),
            "modes": int(present.sum()),  # classes drawn at least once (Stacked MNIST: the modes hit, of 1,000)
        }


class GANScores(nn.Module):
    """FID, KID, precision/recall, density/coverage, classifier score (the Inception-Score analogue) and class
    coverage of one dataset's images.

    ``extractor`` records what a score was computed with: which feature network, which weights, its accuracy.
    """

    def __init__(
        self,
        classifier: nn.Module,
        extractor: dict[str, Any],
        num_classes: int,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        backbone: str = "classifier",
        feature_extractor_weights_path: str | None = None,
        kid_subset_size: int = 1000,
        pr_k: int = 3,
        dc_k: int = 5,
    ):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"metrics.backbone must be one of {BACKBONES}, got {backbone!r}")
        outputs = ClassifierOutputs(classifier)
        logits = ClassifierLogits(outputs)
        features = (
            ClassifierFeatures(outputs)
            if backbone == "classifier"
            else InceptionFeatures(feature_extractor_weights_path)
        )
        shape = tuple(image_shape)
        self.fid = FrechetInceptionDistance(feature=features, input_img_size=shape, reset_real_features=False)
        self.kid_subset_size = kid_subset_size
        self.kid = KernelInceptionDistance(feature=features, subset_size=kid_subset_size, reset_real_features=False)
        self.manifold = ManifoldScores(features, pr_k=pr_k, dc_k=dc_k)  # same features as FID: one forward per batch
        self.classifier_score = InceptionScore(feature=logits, splits=10)
        self.coverage = ClassCoverage(logits, num_classes)
        feature_space = (
            f"{extractor['key']} penultimate layer ({features.num_features}-d)"
            if backbone == "classifier"
            else f"InceptionV3 pool3 (2048-d) from {Path(feature_extractor_weights_path).name}"
        )
        self.extractor = {**extractor, "backbone": backbone, "fid_kid_features": feature_space}

    @classmethod
    def for_data(
        cls,
        datamodule: L.LightningDataModule,
        backbone: str = "classifier",
        feature_extractor_weights_path: str | None = None,
        cache_dir: str | None = None,
        train_if_missing: bool = True,
        kid_subset_size: int = 1000,
        pr_k: int = 3,
        dc_k: int = 5,
        **unused: Any,  # the rest of the metrics config (batch_size)
    ) -> GANScores:
        """Scores for the data of ``datamodule``, with its domain classifier (committed, cached or trained now)."""
        classifier, extractor = extractor_for(datamodule, cache_dir=cache_dir, train_if_missing=train_if_missing)
        return cls(
            classifier,
            extractor,
            datamodule.num_classes,
            datamodule.image_shape,
            backbone,
            feature_extractor_weights_path,
            kid_subset_size,
            pr_k,
            dc_k,
        )

    @torch.no_grad()
    def update_real(self, images: Tensor) -> None:
        self.fid.update(images, real=True)
        self.kid.update(images, real=True)
        self.manifold.update(images, real=True)

    @torch.no_grad()
    def update_fake(self, images: Tensor) -> None:
        self.fid.update(images, real=False)
        self.kid.update(images, real=False)
        self.manifold.update(images, real=False)
        self.classifier_score.update(images)
        self.coverage.update(images)

    @property
    def num_real(self) -> int:
        return int(self.fid.real_features_num_samples)

    @torch.no_grad()
    def compute(self) -> dict[str, Any]:
        # KID needs subsets no larger than either set: the global counts (over DDP ranks), so that the subset size,
        # and with it KID, does not depend on the number of ranks. The configured size is kept for the next call.
        num_fake, num_real = _global_counts(self.fid.fake_features_num_samples, self.fid.real_features_num_samples)
        self.kid.subset_size = min(self.kid_subset_size, num_fake, num_real)
        kid_mean, kid_std = self.kid.compute()
        is_mean, is_std = self.classifier_score.compute()
        return {
            "fid": self.fid.compute().item(),
            "kid_mean": kid_mean.item(),
            "kid_std": kid_std.item(),
            "classifier_score": is_mean.item(),
            "classifier_score_std": is_std.item(),
            **self.manifold.compute(),  # precision, recall (k=pr_k), density, coverage (k=dc_k)
            **self.coverage.compute(),
        }

    def reset_fake(self) -> None:
        """Forget the generated images, keep the real ones (FID and KID keep them across ``reset``)."""
        for metric in (self.fid, self.kid, self.manifold, self.classifier_score, self.coverage):
            metric.reset()

    # ---- feeding ---------------------------------------------------------------------------------------
    def add_real(self, batches: Iterable[Tensor]) -> None:
        for images in batches:
            self.update_real(images)

    def add_generated(self, generate: Callable[[int], Tensor], num_samples: int, batch_size: int = 500) -> None:
        """``generate(n)`` -> (n, C, H, W) in [-1, 1], called until ``num_samples`` images are scored."""
        for start in range(0, num_samples, batch_size):
            self.update_fake(generate(min(batch_size, num_samples - start)))


def _global_counts(*counts: Tensor) -> list[int]:
    """Sample counts summed over DDP ranks (one all-reduce); the local ones outside a process group."""
    stacked = torch.stack([torch.as_tensor(count).reshape(()).long() for count in counts])
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(stacked)  # on the metrics' device: the root device under NCCL
    return [int(count) for count in stacked.tolist()]


def real_batches(loader: Iterable, datamodule: L.LightningDataModule, device: torch.device) -> Iterable[Tensor]:
    """Images of a datamodule's loader as G outputs them: on ``device``, (B, C, H, W) in [-1, 1]."""
    for images, labels in loader:
        yield datamodule.on_after_batch_transfer((images.to(device), labels.to(device)), 0)[0]
