"""The conditional GAN (Mirza & Osindero 2014): G(z, y) draws an image of class y, and D judges the pair (x, y).

In the discriminator step the fakes are drawn for the real chunk's own labels, so real and fake share one
label distribution (the data's) and a gradient penalty's interpolates have one label each. Sample grids show
one row per class, with the same noise down each column. ACGAN (``models/acgan.py``) builds on this class.
"""

from __future__ import annotations

from typing import Annotated, Any

import torch
from torch import Tensor

from ganlab.config.bounds import Bound, check_arguments
from ganlab.config.checks import ConfigError
from ganlab.evaluation.samples import ConditionalSamples
from ganlab.models.gan import GAN, split_scores


class ConditionalGAN(GAN):
    evaluator_class = ConditionalSamples
    conditional = True
    derived_arguments = ("num_fixed_samples",)  # the sample grid's shape

    def __init__(
        self,
        num_classes: Annotated[int, Bound(at_least=1)] = 10,
        samples_per_class: Annotated[int, Bound(at_least=1)] = 10,  # the grid: a row per class, this many a row
        **base: Any,  # GAN's arguments (ganlab.models.gan.GAN)
    ):
        super().__init__(**base | {"num_fixed_samples": num_classes * samples_per_class})
        check_arguments(ConditionalGAN.__init__, locals(), "model.")
        self.num_classes = num_classes
        # The sample grid: row i is class i, and a column shares z.
        self.fixed_noise = self.sample_latent(samples_per_class).repeat(num_classes, 1)  # (N * S, latent)
        self.register_buffer("fixed_labels", torch.arange(num_classes).repeat_interleave(samples_per_class))

    def on_fit_start(self) -> None:
        super().on_fit_start()
        if getattr(self.trainer.datamodule, "labels_per_class", None) is not None:
            raise ConfigError(
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
