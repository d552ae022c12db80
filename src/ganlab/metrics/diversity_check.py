"""Can the scores see diversity inside a class? "Generators" made of real images, scored like a GAN.

    python -m ganlab.metrics.diversity_check --data mnist fashion_mnist --num-samples 1000

- (a) ``real``: held-out real training images, as many per class as the data has: the best a generator can do;
- (b) ``1 per class``: one fixed real image per class, repeated: every class present and perfectly drawn,
  no variety inside a class (the failure the class-coverage scores and conditional accuracy cannot see);
- (c) ``3 per class``: three fixed images per class, repeated.

Each is scored against the test split with ``GANScores`` (the same path as ``evaluate.py``). A feature space that
sees diversity ranks them (a) < (c) < (b) in FID, far apart, and recall and coverage fall from (a) to (b).
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
from torch import Tensor

from ganlab.data.fashion_mnist import FashionMNISTDataModule
from ganlab.data.mnist import MNISTDataModule
from ganlab.metrics.classifier import real_splits, to_model_input
from ganlab.metrics.scores import GANScores

DATAMODULES = {"mnist": MNISTDataModule, "fashion_mnist": FashionMNISTDataModule}
KEYS = ("fid", "kid_mean", "precision", "recall", "density", "coverage", "coverage_kl")


def fixed_per_class(images: Tensor, labels: Tensor, per_class: int, num: int, seed: int = 0) -> Tensor:
    """``num`` images cycling through ``per_class`` fixed images of every class: (num, H, W), classes balanced."""
    generator = torch.Generator().manual_seed(seed)
    classes = labels.unique()
    chosen = torch.stack(
        [
            (labels == c)
            .nonzero()
            .squeeze(1)[torch.randperm(int((labels == c).sum()), generator=generator)[:per_class]]
            for c in classes
        ]
    )  # (classes, per_class)
    position = torch.arange(num)
    return images[chosen[position % len(classes), (position // len(classes)) % per_class]]


def real_generators(splits: dict[str, Tensor], num: int, seed: int = 0) -> dict[str, Tensor]:
    """(a), (b), (c) from the training split, each (num, 1, H, W) in [-1, 1]: never the test images they are scored against."""
    images, labels = splits["train_images"], splits["train_labels"]
    held_out = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:num]
    return {
        "(a) real": to_model_input(images[held_out]),
        "(b) 1 per class": to_model_input(fixed_per_class(images, labels, 1, num, seed)),
        "(c) 3 per class": to_model_input(fixed_per_class(images, labels, 3, num, seed)),
    }


@torch.no_grad()
def score_image_sets(
    datamodule: Any,
    splits: dict[str, Tensor],
    image_sets: dict[str, Tensor],
    num_real: int | None = None,
    **metrics: Any,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Each set of images (N, C, H, W) in [-1, 1] scored as ``evaluate.py`` scores samples, against the first
    ``num_real`` test images of ``splits`` (all when None): ({name: scores}, the feature extractor's record)."""
    scores = GANScores.for_data(datamodule, **metrics)
    for batch in to_model_input(splits["test_images"][:num_real]).split(1000):
        scores.update_real(batch)
    results = {}
    for name, images in image_sets.items():
        scores.reset_fake()
        for batch in images.split(1000):
            scores.update_fake(batch)
        results[name] = {key: value for key, value in scores.compute().items() if key in KEYS}
    return results, scores.extractor


def check(
    datamodule: Any, num_samples: int = 1000, num_real: int | None = None, seed: int = 0, **metrics: Any
) -> dict[str, dict[str, Any]]:
    """Scores of (a), (b), (c) against the first ``num_real`` test images (all when None)."""
    splits = real_splits(datamodule)
    generators = real_generators(splits, num_samples, seed)
    results, extractor = score_image_sets(datamodule, splits, generators, num_real, **metrics)
    return results | {"feature space": extractor["fid_kid_features"]}


def table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    rows = [
        "| data | generator | FID | KID | precision | recall | density | coverage | class coverage KL |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for data, by_generator in results.items():
        for name, values in by_generator.items():
            if name != "feature space":
                rows.append(
                    f"| {data} | {name} | {values['fid']:.2f} | {values['kid_mean']:.4f} | {values['precision']:.3f} | {values['recall']:.3f} "
                    f"| {values['density']:.3f} | {values['coverage']:.3f} | {values['coverage_kl']:.4f} |"
                )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["mnist", "fashion_mnist"], choices=sorted(DATAMODULES))
    parser.add_argument("--num-samples", type=int, default=1000, help="images per generator")
    parser.add_argument("--num-real", type=int, default=None, help="test images to compare with (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--root",
        default="data",
        help="data.root: where the IDX files are looked for (MNIST falls back to the bundled sample)",
    )
    args = parser.parse_args()
    torch.manual_seed(args.seed)  # KID and the classifier score draw random subsets
    results = {}
    for data in args.data:
        results[data] = check(
            DATAMODULES[data](root=args.root, download=False),
            args.num_samples,
            args.num_real,
            args.seed,
            train_if_missing=False,
        )
        print(f"{data}: {results[data]['feature space']}", flush=True)
    print(table(results))


if __name__ == "__main__":
    main()
