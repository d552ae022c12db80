"""What holds a GAN back, read from its checkpoints: the two families that stay behind the default
(docs/variants.md), and D's memorization of the training images over a long run (docs/results.md).

    python bench/ceilings.py --began <run>/checkpoints/last.ckpt --wgan <run>/checkpoints/last.ckpt
    python bench/ceilings.py --overfit <run>/checkpoints/step_0001000.ckpt <run>/checkpoints/step_0005000.ckpt ...

- BEGAN: D is an autoencoder and G is trained to make images that D reconstructs as well as real ones, so G can
  be no sharper than what D reconstructs. Scored as ``evaluate.py`` scores (against the test split, in the
  domain classifier's features): G's samples, D's reconstructions of held-out real training images, and those
  real images themselves. If the reconstructions score near G's samples, the autoencoder bounds BEGAN at this
  size, not G.
- WGAN (weight clipping): the share of each critic layer's weights at the clip bound (within 1% of ``c``).
  Gulrajani et al. (2017, figure 1b) found clipping pushes most weights to the two bounds, where the critic
  uses little of its capacity: a critic that is mostly at the bounds is the limit, not G or the budget.
- Overfitting (any family with a decision boundary: gan, nsgan, lsgan, hinge): D's verdict on training images it
  has learned from against held-out real images (the validation split) and G's samples, per checkpoint. r = E[sign(D(x)
  - boundary)] on the training images is StyleGAN2-ADA's overfitting signal r_t; a gap that grows between the
  training and the held-out images is D memorizing the training set (Karras et al. 2020, figure 1), which
  ``model.augment_target`` counters. D in eval mode: no augmentation, the images as they are.
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


@torch.no_grad()
def overfit_rows(ckpt_paths: list[str], num: int, seed: int) -> dict[str, dict[str, float]]:
    rows, datamodule = {}, None
    for path in ckpt_paths:
        gan, record = load_generator(path, torch.device("cpu"))
        if gan.loss.decision_boundary is None:
            raise SystemExit(f"{path}: {type(gan.loss).__name__}'s scores have no decision boundary to read r from")
        if datamodule is None:  # every checkpoint of one run: one data
            datamodule = datamodule_for(OmegaConf.create({"ckpt_path": path}), record["data"])
            datamodule.setup()
        torch.manual_seed(seed)
        sets = {
            "train": datamodule.train_set[torch.randperm(len(datamodule.train_set))[:num]],
            "held out": datamodule.val_set[torch.randperm(len(datamodule.val_set))[:num]],
        }
        row = {"step": record["global_step"]}
        for name, (images, labels) in sets.items():
            images = images.unsqueeze(1) if images.dim() == 3 else images
            scores = torch.cat(
                [gan.discriminate(b.float().div(127.5).sub(1), c)[0] for b, c in zip(images.split(500), labels.split(500))]
            )
            row[f"D {name}"], row[f"r {name}"] = scores.mean().item(), (scores - gan.loss.decision_boundary).sign().mean().item()
        fakes = torch.cat([gan.generate(num=len(b)) for b in torch.arange(num).split(500)])
        fake_labels = torch.zeros(len(fakes), dtype=torch.long)
        row["D fake"] = gan.discriminate(fakes, fake_labels)[0].mean().item()
        p = getattr(gan.discriminator, "p", None)
        row["augment p"] = float("nan") if p is None else p.item()
        rows[path] = row
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--began", help="a BEGAN checkpoint (experiment=began)")
    parser.add_argument("--wgan", help="a WGAN checkpoint (experiment=wgan)")
    parser.add_argument("--overfit", nargs="+", help="checkpoints of one run, e.g. every step_*.ckpt")
    parser.add_argument("--num-samples", type=int, default=2000, help="images per row (bench/quality.py's 2,000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not (args.began or args.wgan or args.overfit):
        parser.error("pass --began, --wgan or --overfit with checkpoint paths")
    for path in [*filter(None, (args.began, args.wgan)), *(args.overfit or [])]:
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
    if args.overfit:
        print(f"\nD's verdicts, {args.num_samples} images per set (training: what D learned from; held out: the validation split)\n")
        print("| step | r train | r held out | D train | D held out | D fake | augment p |\n|---|---|---|---|---|---|---|")
        for r in overfit_rows(args.overfit, args.num_samples, args.seed).values():
            print(
                f"| {r['step']:,} | {r['r train']:+.3f} | {r['r held out']:+.3f} | {r['D train']:+.3f} "
                f"| {r['D held out']:+.3f} | {r['D fake']:+.3f} | {r['augment p']:.3f} |"
            )


if __name__ == "__main__":
    main()
