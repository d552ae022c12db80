"""Feature modules for torchmetrics' ``feature=`` argument. All take G's output: (B, 1, H, W) images in [-1, 1]."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from ganlab.metrics.classifier import DomainClassifier

INCEPTION_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"  # torch-fidelity's FID Inception, as torchmetrics uses


class FrozenFeatures(nn.Module):
    """Always in eval mode: torchmetrics may call ``.train()`` on its children, and BatchNorm must keep its statistics."""

    def train(self, mode: bool = True) -> FrozenFeatures:
        return super().train(False)


class ClassifierOutputs(FrozenFeatures):
    """One classifier forward per batch, shared: FID and KID read its features, the classifier score and class
    coverage its logits, and each metric calls its feature module on the same batch. The last batch's outputs
    are kept, keyed by the batch tensor itself, so four metrics cost one forward instead of four."""

    def __init__(self, classifier: DomainClassifier):
        super().__init__()
        self.classifier = classifier.eval()
        self._last: tuple[Tensor, Tensor, Tensor] | None = None  # (images, features, logits)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        if self._last is None or self._last[0] is not images:
            features = self.classifier.features(images)  # (B, feature_dim)
            self._last = (images, features, self.classifier.head(features))  # + (B, num_classes) logits
        return self._last[1], self._last[2]


class ClassifierFeatures(FrozenFeatures):
    """The domain classifier's penultimate layer, (B, feature_dim): the space FID and KID compare in."""

    def __init__(self, outputs: ClassifierOutputs):
        super().__init__()
        self.outputs = outputs
        self.num_features = outputs.classifier.arch["feature_dim"]  # torchmetrics reads this instead of probing

    def forward(self, images: Tensor) -> Tensor:
        return self.outputs(images)[0]


class ClassifierLogits(FrozenFeatures):
    """The domain classifier's logits, (B, num_classes): InceptionScore and class coverage take their softmax."""

    def __init__(self, outputs: ClassifierOutputs):
        super().__init__()
        self.outputs = outputs
        self.num_features = outputs.classifier.arch["num_classes"]

    def forward(self, images: Tensor) -> Tensor:
        return self.outputs(images)[1]


class InceptionFeatures(FrozenFeatures):
    """torchmetrics' InceptionV3 (2048-d pool features) on grey images: [-1, 1] -> uint8, 1 -> 3 channels.

    Only from weights on disk: offline, a download would fail halfway into a run, so a missing file stops at once.
    """

    num_features = 2048

    def __init__(self, weights_path: str | Path | None):
        super().__init__()
        if not weights_path or not Path(weights_path).expanduser().is_file():
            raise FileNotFoundError(
                f"metrics.backbone=inception needs InceptionV3 weights on disk, got metrics.feature_extractor_weights_path={weights_path}. "
                f"Set it to a local copy of torch-fidelity's {INCEPTION_WEIGHTS} (nothing is downloaded), "
                "or use the domain classifier: metrics.backbone=classifier"
            )
        try:
            from torchmetrics.image.fid import NoTrainInceptionV3

            self.inception = NoTrainInceptionV3(
                name="inception-v3-compat",
                features_list=["2048"],
                feature_extractor_weights_path=str(Path(weights_path).expanduser()),
            )
        except ModuleNotFoundError as err:
            raise ModuleNotFoundError(
                f"metrics.backbone=inception needs torch-fidelity: pip install -e '.[inception]' ({err})"
            ) from None

    def forward(self, images: Tensor) -> Tensor:
        pixels = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)  # (B, C, H, W) uint8
        if pixels.shape[1] == 1:
            pixels = pixels.expand(-1, 3, -1, -1)  # grey -> RGB; Inception resizes to 299x299 itself
        return self.inception(pixels).reshape(len(images), -1)  # (B, 2048)
