"""Precision, recall, density and coverage: k-nearest-neighbour estimates of how much of the real data's
feature manifold the samples cover and how much of theirs lies on it.

FID folds fidelity and diversity into one number; these split them, so a generator that draws a few good
images per class (high precision, low recall and coverage) is told apart from one that draws varied but
flawed ones (the reverse).

- improved precision and recall (Kynkäänniemi et al. 2019, k=3): each set's manifold is the union of balls
  around its points, each ball reaching the point's k-th nearest neighbour in the same set. Precision: the
  share of samples inside the real manifold; recall: the share of real images inside the samples' manifold.
- density and coverage (Naeem et al. 2020, k=5): density counts how many real balls each sample falls in,
  divided by k (about 1 for samples distributed like the data, above 1 where they crowd in dense regions);
  coverage is the share of real balls that hold at least one sample. Both use only the real balls, so
  outliers among the samples cannot inflate them, and repeated samples add no coverage.

All distances are Euclidean in the feature space FID uses; comparisons are strict (``<``), as in the
authors' code, so an exact duplicate has a ball of radius 0 that contains nothing.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

CHUNK = 1024  # rows of a distance matrix held at once: 1024 x 10,000 float64 = 80 MB


def _distances(rows: Tensor, columns: Tensor) -> Tensor:
    return torch.cdist(rows.double(), columns.double())  # (R, C) Euclidean; float64 so that ties with radii are exact


def knn_radii(features: Tensor, ks: tuple[int, ...]) -> dict[int, Tensor]:
    """(N, D) -> {k: (N,)}: each point's distance to its k-th nearest neighbour in the same set (itself excluded)."""
    largest = max(ks)
    if len(features) <= largest:
        raise ValueError(f"k={largest} nearest neighbours need more than {largest} points, got {len(features)}")
    nearest = torch.cat(
        [_distances(rows, features).topk(largest + 1, dim=1, largest=False).values for rows in features.split(CHUNK)]
    )  # (N, k+1)
    return {k: nearest[:, k] for k in ks}  # column 0: the point itself, at distance 0


def manifold_scores(real: Tensor, fake: Tensor, pr_k: int = 3, dc_k: int = 5) -> dict[str, float]:
    """Precision and recall (Kynkäänniemi et al. 2019) and density and coverage (Naeem et al. 2020) of (M, D)
    sample features against (N, D) real ones: one pass over each of the three distance matrices."""
    real_radii = knn_radii(real, (pr_k, dc_k))  # {k: (N,)}
    fake_radii = knn_radii(fake, (pr_k,))[pr_k][:, None]  # (M, 1)
    in_real_manifold = torch.zeros(len(fake), dtype=torch.bool, device=real.device)  # (M,) precision
    balls_holding = torch.zeros(len(fake), dtype=torch.long, device=real.device)  # (M,) density
    in_fake_manifold = torch.zeros(len(real), dtype=torch.bool, device=real.device)  # (N,) recall
    nearest_sample = torch.full((len(real),), float("inf"), dtype=torch.float64, device=real.device)  # (N,) coverage
    for rows in torch.arange(len(fake), device=real.device).split(CHUNK):
        d = _distances(fake[rows], real)  # (chunk, N)
        in_real_manifold[rows] = (d < real_radii[pr_k]).any(1)
        balls_holding[rows] = (d < real_radii[dc_k]).sum(1)
        in_fake_manifold |= (d < fake_radii[rows]).any(0)
        nearest_sample = torch.minimum(nearest_sample, d.min(0).values)
    return {
        "precision": in_real_manifold.double().mean().item(),
        "recall": in_fake_manifold.double().mean().item(),
        "density": balls_holding.sum().item() / (dc_k * len(fake)),
        "coverage": (nearest_sample < real_radii[dc_k]).double().mean().item(),
    }


class ManifoldScores(Metric):
    """Precision and recall (k=``pr_k``), density and coverage (k=``dc_k``) of generated against real images.

    Keeps every feature vector (k-NN needs them all, unlike FID's running sums), and the real ones across
    ``reset`` as FID and KID do, so a generator scored again costs only its own samples.
    """

    full_state_update = False

    def __init__(self, features: nn.Module, pr_k: int = 3, dc_k: int = 5, **kwargs: Any):
        super().__init__(**kwargs)
        self.features = features
        self.pr_k, self.dc_k = pr_k, dc_k
        self.add_state("real_features", [], dist_reduce_fx="cat")
        self.add_state("fake_features", [], dist_reduce_fx="cat")

    def update(self, images: Tensor, real: bool) -> None:
        features = self.features(images).reshape(len(images), -1).double()  # (B, D)
        (self.real_features if real else self.fake_features).append(features)

    def compute(self) -> dict[str, float]:
        real, fake = dim_zero_cat(self.real_features), dim_zero_cat(self.fake_features)  # (N, D), (M, D)
        if min(len(real), len(fake)) <= max(
            self.pr_k, self.dc_k
        ):  # too few for k neighbours: no score, no crash mid-training
            return dict.fromkeys(("precision", "recall", "density", "coverage"), float("nan"))
        return manifold_scores(real, fake, self.pr_k, self.dc_k)

    def reset(self) -> None:
        real = deepcopy(self.real_features)
        super().reset()
        self.real_features = real
