"""What holds back the two families that stay behind the default (docs/variants.md), read from their checkpoints.

    python bench/ceilings.py --began <run>/checkpoints/last.ckpt --wgan <run>/checkpoints/last.ckpt

- BEGAN: D is an autoencoder and G is trained to make images that D reconstructs as well as real ones, so G can
  be no sharper than what D reconstructs. Scored as ``evaluate.py`` scores (against the test split, in the
  domain classifier's features): G's samples, D's reconstructions of held-out real training images, and those
  real images themselves. If the reconstructions score near G's samples, the autoencoder bounds BEGAN at this
  size, not G.
- WGAN (weight clipping): the share of each critic layer's weights at the clip bound (within 1% of ``c``).
  Gulrajani et al. (2017, figure 1b) found clipping pushes most weights to the two bounds, where the critic
  uses little of its capacity: a critic that is mostly at the bounds is the limit, not G or the budget.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from omegaconf import OmegaConf

from ganlab.evaluate import datamodule_for, load_generator
from ganlab.metrics.classifier import real_splits, to_model_input
from ganlab.metrics.diversity_check import score_image_sets
from ganlab.run.console import quiet_library_messages


@torch.no_grad()
def began_rows(ckpt_path: str, num: int, seed: int) -> dict[str, dict[str, float]]:
    gan, record = load_generator(ckpt_path, torch.device("cpu"))
    datamodule = datamodule_for(OmegaConf.create({"ckpt_path": ckpt_path}), record["data"])  # the run's data
    splits = real_splits(datamodule)
    torch.manual_seed(seed)
    held_out = torch.randperm(len(splits["train_images"]))[:num]
    real = to_model_input(splits["train_images"][held_out])
    images = {
        "G's samples": torch.cat([gan.generate(z=gan.sample_latent(len(b))) for b in real.split(500)]),
        "D's reconstructions of real training images": torch.cat(
            [gan.discriminator.reconstruct(b).clamp(-1, 1) for b in real.split(500)]
        ),
        "those real training images": real,
    }
    rows, _ = score_image_sets(datamodule, splits, images, train_if_missing=False)
    return rows


def wgan_rows(ckpt_path: str) -> dict[str, dict[str, float]]:
    gan, _ = load_generator(ckpt_path, torch.device("cpu"))
    bound = gan.loss.clip_value
    counts = {
        name: (weight.numel(), int((weight.abs() >= 0.99 * bound).sum()))
        for name, weight in gan.discriminator.named_parameters()
    }
    counts["all"] = (sum(n for n, _ in counts.values()), sum(at for _, at in counts.values()))
    return {name: {"weights": n, "at the bound": at / n} for name, (n, at) in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--began", help="a BEGAN checkpoint (experiment=began)")
    parser.add_argument("--wgan", help="a WGAN checkpoint (experiment=wgan)")
    parser.add_argument("--num-samples", type=int, default=2000, help="images per row (bench/quality.py's 2,000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not (args.began or args.wgan):
        parser.error("pass --began and/or --wgan with a checkpoint path")
    for path in filter(None, (args.began, args.wgan)):
        if not Path(path).is_file():
            parser.error(f"{path} is not a file: pass a checkpoint, e.g. outputs/runs/<run>/checkpoints/last.ckpt")
    quiet_library_messages()
    if args.began:
        rows = began_rows(args.began, args.num_samples, args.seed)
        print(f"\nBEGAN {args.began}, {args.num_samples} images per row, against the test split\n")
        print(
            "| images | FID | precision | recall | density | coverage | class coverage KL |\n|---|---|---|---|---|---|---|"
        )
        for name, r in rows.items():
            print(
                f"| {name} | {r['fid']:.2f} | {r['precision']:.3f} | {r['recall']:.3f} | {r['density']:.3f} "
                f"| {r['coverage']:.3f} | {r['coverage_kl']:.4f} |"
            )
    if args.wgan:
        print(f"\nWGAN {args.wgan}: critic weights within 1% of the clip bound\n")
        print("| critic parameter | weights | at the bound |\n|---|---|---|")
        for name, r in wgan_rows(args.wgan).items():
            print(f"| {name} | {r['weights']:,} | {r['at the bound']:.1%} |")


if __name__ == "__main__":
    main()
