"""Scores of an unpaired translator (CycleGAN): label preservation, FID against the real target domain, cycle
reconstruction error, each beside the baseline of the untranslated images scored the same way.

- ``label_preservation_ab``: the domain-B classifier's accuracy on G_AB(a) against a's own labels (does a
  translated UCI 7 read as an MNIST 7?); ``_ba`` the reverse with the domain-A classifier. The labels are used
  here only, never in training.
- ``fid_ab``: FID of G_AB(a) against real B images, in the B classifier's feature space; ``fid_ba`` likewise.
- ``label_preservation_ab_per_class``: the same per source class (a list), where a lost class shows (translated
  1s read as another digit); ``_ba`` and the baselines likewise.
- ``cycle_error_a``: mean absolute pixel error of G_BA(G_AB(a)) against a, on the [-1, 1] scale; ``_b`` likewise.
- ``baseline_*``: the same label preservation and FID for the untranslated images (a scored as if it were a B
  image): what translation has to beat.

All states are torchmetrics states, summed across DDP ranks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy
from torchmetrics.image.fid import FrechetInceptionDistance

from ganlab.metrics.classifier import extractor_for
from ganlab.metrics.features import ClassifierFeatures, ClassifierLogits, ClassifierOutputs

Translator = Callable[[Tensor], Tensor]  # (B, C, H, W) in [-1, 1] -> (B, C, H, W) in [-1, 1]
DIRECTIONS = ("ab", "ba")


class TranslationScores(nn.Module):
    def __init__(
        self,
        classifier_a: nn.Module,
        extractor_a: dict[str, Any],
        classifier_b: nn.Module,
        extractor_b: dict[str, Any],
        image_shape: tuple[int, int, int] = (1, 28, 28),
        num_classes: int = 10,
    ):
        super().__init__()
        outputs = {"a": ClassifierOutputs(classifier_a), "b": ClassifierOutputs(classifier_b)}
        self.logits = nn.ModuleDict({domain: ClassifierLogits(out) for domain, out in outputs.items()})
        features = {domain: ClassifierFeatures(out) for domain, out in outputs.items()}
        shape = tuple(image_shape)
        # FID of direction ab is measured in domain B's feature space, against real B images (and ba in A's).
        self.fid = nn.ModuleDict(
            {
                f"{prefix}{direction}": FrechetInceptionDistance(
                    feature=features[direction[1]], input_img_size=shape, reset_real_features=False
                )
                for direction in DIRECTIONS
                for prefix in ("", "baseline_")
            }
        )
        names = [f"{prefix}label_preservation_{d}" for d in DIRECTIONS for prefix in ("", "baseline_")] + [
            "cycle_error_a",
            "cycle_error_b",
        ]
        self.means = nn.ModuleDict({name: MeanMetric() for name in names})
        # Accuracy per true class ("none": no average) is the share of each source class whose label survives.
        self.per_class = nn.ModuleDict(
            {
                name: MulticlassAccuracy(num_classes, average="none")
                for name in names
                if name.startswith(("label_", "baseline_label_"))
            }
        )
        self.extractors = {"a": extractor_a, "b": extractor_b}

    @classmethod
    def for_data(
        cls,
        datamodule: L.LightningDataModule,
        cache_dir: str | None = None,
        train_if_missing: bool = True,
        **unused: Any,
    ) -> TranslationScores:
        """Scores for a two-domain datamodule (``domain_a``, ``domain_b``), with each domain's committed classifier."""
        classifier_a, extractor_a = extractor_for(
            datamodule.domain_a, cache_dir=cache_dir, train_if_missing=train_if_missing
        )
        classifier_b, extractor_b = extractor_for(
            datamodule.domain_b, cache_dir=cache_dir, train_if_missing=train_if_missing
        )
        return cls(
            classifier_a,
            extractor_a,
            classifier_b,
            extractor_b,
            datamodule.image_shape,
            getattr(datamodule, "num_classes", 10),
        )

    @torch.no_grad()
    def add_real(self, batches: Iterable[tuple[Tensor, Tensor, Tensor, Tensor]]) -> None:
        """The real target images of both directions; kept across ``reset_translated``."""
        for a, _, b, _ in batches:
            for direction, target in (("ab", b), ("ba", a)):
                if len(target):
                    self.fid[direction].update(target, real=True)
                    self.fid[f"baseline_{direction}"].update(target, real=True)

    @torch.no_grad()
    def add_translated(
        self,
        translate_ab: Translator,
        translate_ba: Translator,
        batches: Iterable[tuple[Tensor, Tensor, Tensor, Tensor]],
    ) -> None:
        """Translate every source image of ``batches`` (A images, A labels, B images, B labels) both ways and back."""
        for a, a_labels, b, b_labels in batches:
            for direction, source, labels, forward, backward in (
                ("ab", a, a_labels, translate_ab, translate_ba),
                ("ba", b, b_labels, translate_ba, translate_ab),
            ):
                if not len(source):
                    continue
                target_domain = direction[1]
                translated = forward(source)
                self.fid[direction].update(translated, real=False)
                self.fid[f"baseline_{direction}"].update(source, real=False)
                for prefix, images in (("", translated), ("baseline_", source)):
                    name = f"{prefix}label_preservation_{direction}"
                    predicted = self.logits[target_domain](images).argmax(1)
                    self.means[name].update((predicted == labels).float())
                    self.per_class[name].update(predicted, labels)
                self.means[f"cycle_error_{direction[0]}"].update(
                    (backward(translated) - source).abs().flatten(1).mean(1)
                )

    @torch.no_grad()
    def compute(self) -> dict[str, float]:
        return {
            **{
                f"fid_{name}"
                if not name.startswith("baseline_")
                else f"baseline_fid_{name.removeprefix('baseline_')}": fid.compute().item()
                for name, fid in self.fid.items()
            },
            **{name: mean.compute().item() for name, mean in self.means.items()},
            **{f"{name}_per_class": accuracy.compute().tolist() for name, accuracy in self.per_class.items()},
        }

    def reset_translated(self) -> None:
        """Forget the translated images, keep the real ones (FID keeps them across ``reset``)."""
        for metric in (*self.fid.values(), *self.means.values(), *self.per_class.values()):
            metric.reset()

    @property
    def num_real(self) -> dict[str, int]:
        return {direction: int(self.fid[direction].real_features_num_samples) for direction in DIRECTIONS}
