"""The conditional GAN (Mirza & Osindero 2014): G(z, y) draws an image of class y, and D judges the pair (x, y).

In the discriminator step the fakes are drawn for the real chunk's own labels, so real and fake share one
label distribution (the data's) and a gradient penalty's interpolates have one label each. Sample grids show
one row per class, with the same noise down each column. ACGAN (``models/acgan.py``) builds on this class.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ganlab.evaluation.samples import ConditionalSamples
from ganlab.models.gan import GAN, split_scores


class ConditionalGAN(GAN):
    evaluator_class = ConditionalSamples
    conditional = True

    def __init__(
        self,
        generator: dict[str, Any],
        discriminator: dict[str, Any],
        loss: dict[str, Any],
        optimizer: dict[str, Any],
        num_classes: int = 10,
        samples_per_class: int = 10,  # the sample grid: one row per class, this many images a row
        latent_dim: int = 100,
        prior: str = "normal",
    ):
        super().__init__(
            generator,
            discriminator,
            loss,
            optimizer,
            latent_dim,
            prior,
            num_fixed_samples=num_classes * samples_per_class,
        )
        self.num_classes = num_classes
        self.fixed_noise = self.sample_latent(samples_per_class).repeat(
            num_classes, 1
        )  # (N * S, latent): a column shares z
        self.register_buffer(
            "fixed_labels", torch.arange(num_classes).repeat_interleave(samples_per_class)
        )  # (N * S,): row i is class i

    def on_fit_start(self) -> None:
        super().on_fit_start()
        if getattr(self.trainer.datamodule, "labels_per_class", None) is not None:
            raise ValueError(
                f"{type(self).__name__} conditions on every training label; set data.labels_per_class=null (hidden labels are for model=sgan)"
            )

    def classes_in_turn(self, num: int) -> Tensor:
        return torch.arange(num, device=self.device) % self.num_classes  # (num,): 0, 1, ..., N-1, 0, 1, ...

    def check_labels(self, labels: Tensor) -> Tensor:
        labels = torch.as_tensor(labels, device=self.device).long()
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(
                f"labels must be class indices in [0, {self.num_classes}), got values {labels.min().item()}..{labels.max().item()}"
            )
        return labels

    def generator_inputs(self, num: int, labels: Tensor | None = None, z: Tensor | None = None) -> tuple[Tensor, ...]:
        """(z (B, latent), y (B,)): the given classes, or without labels classes 0, 1, ..., N-1, 0, 1, ... in turn."""
        (z,) = super().generator_inputs(num, z=z)
        labels = self.classes_in_turn(num) if labels is None else self.check_labels(labels)
        if len(labels) != len(z):
            raise ValueError(f"got {len(labels)} labels for {len(z)} latent vectors; pass one label per image")
        return z, labels

    def discriminate(self, images: Tensor, labels: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
        return split_scores(self.discriminator(images, labels))  # the projection D judges (x, y)
