"""What holds a GAN back, read from its checkpoints: the two families that stay behind the default
(docs/variants.md), and D's memorization of the training images over a long run (docs/results.md).

    python bench/ceilings.py --began <run>/checkpoints/last.ckpt --wgan <run>/checkpoints/last.ckpt
    python bench/ceilings.py --overfit <run>/checkpoints/step_0001000.ckpt <run>/checkpoints/step_0005000.ckpt ...
    python bench/ceilings.py --uci-judge
    python bench/ceilings.py --stackgan-condition <run>/checkpoints/last.ckpt ...
    python bench/ceilings.py --stacked-reads <run>/checkpoints/last.ckpt ...

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
- CycleGAN's MNIST -> UCI label preservation is read by the committed UCI classifier. How well can that judge read
  MNIST writers' digits at all, once they are in UCI's format? Each MNIST test digit is put through UCI's own
  pipeline (its bounding box squared, 8x8 counts 0..16 of the box's blocks, then ``bundle_uci_digits``' framing):
  the best a translator that keeps the digit and takes on UCI's format exactly can score.
- StackGAN draws each stage's text condition from N(mu, sigma^2) (conditioning augmentation), also at sampling.
  Caption class accuracy with the condition drawn, as ``evaluate.py`` scores it, against the condition held at
  mu: the share of the errors that the conditioning noise makes (the KL weight, ``model.kl_weight``, sets sigma).
- Stacked MNIST's KL counts the digits the MNIST classifier reads on each channel. How sure is it of them, on the
  fakes against real digits? Per read digit: its share of the channels, the classifier's mean confidence (top
  softmax probability) and the share read with confidence under 0.9. Over-drawn digits read with low confidence
  are ambiguous strokes the classifier files under them, not modes G prefers.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from ganlab.data.bundle_uci_digits import to_mnist_frame
from ganlab.data.mnist import MNISTDataModule
from ganlab.data.uci_digits import UCIDigitsDataModule
from ganlab.evaluate import datamodule_for, load_generator
from ganlab.metrics.classifier import extractor_for, real_splits, to_model_input
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
        for name, batch in sets.items():
            images, labels = datamodule.on_after_batch_transfer(batch, 0)  # as training sees them, in [-1, 1]
            scores = torch.cat([gan.discriminate(b, c)[0] for b, c in zip(images.split(500), labels.split(500))])
            row[f"D {name}"], row[f"r {name}"] = (
                scores.mean().item(),
                (scores - gan.loss.decision_boundary).sign().mean().item(),
            )
        fakes = torch.cat([gan.generate(num=len(b)) for b in torch.arange(num).split(500)])
        fake_labels = torch.zeros(len(fakes), dtype=torch.long)
        row["D fake"] = gan.discriminate(fakes, fake_labels)[0].mean().item()
        p = getattr(gan.discriminator, "p", None)
        row["augment p"] = float("nan") if p is None else p.item()
        rows[path] = row
    return rows


def class_accuracy(predicted: torch.Tensor, labels: torch.Tensor) -> dict[str, object]:
    """Accuracy overall and per class 0-9 (the share of each class read as itself)."""
    return {
        "accuracy": (predicted == labels).float().mean().item(),
        "per class": [(predicted[labels == c] == c).float().mean().item() for c in range(10)],
    }


def print_class_accuracy(header: str, rows: dict[str, dict[str, object]], digits: int) -> None:
    print(f"\n{header}\n\n| images | accuracy | per class 0-9 |\n|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['accuracy']:.{digits}%} | {' '.join(f'{v:.2f}' for v in r['per class'])} |")


def mnist_through_uci_pipeline(images: torch.Tensor) -> torch.Tensor:
    """(N, 28, 28) uint8 MNIST digits -> (N, 28, 28) uint8 in UCI's format: each digit's bounding box squared and
    pooled to 8x8 counts 0..16 (UCI counts on-pixels of 4x4 blocks of a 32x32 bitmap the digit fills), then framed
    as the bundled UCI digits are (bilinear to a 20x20 box, 4-pixel border)."""
    counts = []
    for image in images.float() / 255:
        rows, cols = (image > 0.1).nonzero().unbind(1)
        box = image[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        side = max(box.shape)
        square = torch.zeros(side, side)
        top, left = (side - box.shape[0]) // 2, (side - box.shape[1]) // 2
        square[top : top + box.shape[0], left : left + box.shape[1]] = box
        counts.append((F.adaptive_avg_pool2d(square[None, None], 8)[0, 0] * 16).round())
    return torch.from_numpy(to_mnist_frame(torch.stack(counts).to(torch.uint8).numpy()))


@torch.no_grad()
def uci_judge_rows() -> dict[str, dict[str, float]]:
    uci, mnist = UCIDigitsDataModule(), MNISTDataModule(download=False)
    classifier, _ = extractor_for(uci, train_if_missing=False)
    classifier.eval()
    uci_test, mnist_test = real_splits(uci), real_splits(mnist)
    sets = {
        "UCI test digits": (uci_test["test_images"], uci_test["test_labels"]),
        "MNIST test digits as they are": (mnist_test["test_images"], mnist_test["test_labels"]),
        "MNIST test digits through UCI's pipeline": (
            mnist_through_uci_pipeline(mnist_test["test_images"]),
            mnist_test["test_labels"],
        ),
    }
    return {
        name: class_accuracy(classifier(to_model_input(images)).argmax(1), labels)
        for name, (images, labels) in sets.items()
    }


@torch.no_grad()
def stackgan_condition_rows(ckpt_paths: list[str], num: int, seed: int) -> dict[str, dict[str, object]]:
    from ganlab.data.captions import unpack
    from ganlab.networks.stacked import ConditioningAugmentation

    drawn = ConditioningAugmentation.forward

    def at_mean(self, text):
        _, mu, log_var = drawn(self, text)
        return mu, mu, log_var

    rows, classifier = {}, None
    for path in ckpt_paths:
        gan, record = load_generator(path, torch.device("cpu"))
        if classifier is None:
            datamodule = datamodule_for(OmegaConf.create({"ckpt_path": path}), record["data"])
            classifier, _ = extractor_for(datamodule, train_if_missing=False)
            classifier.eval()
        for condition, forward in (("drawn", drawn), ("mu", at_mean)):
            ConditioningAugmentation.forward = forward
            try:
                torch.manual_seed(seed)
                captions = gan.random_captions(num)
                classes = unpack(captions).mentioned[:, 0]
                images = torch.cat([gan.generate(captions=c) for c in captions.split(500)])
            finally:
                ConditioningAugmentation.forward = drawn
            rows[f"{path}, condition {condition}"] = class_accuracy(classifier(images).argmax(1), classes)
    return rows


@torch.no_grad()
def stacked_read_rows(ckpt_paths: list[str], num: int, seed: int) -> dict[str, dict[str, list[float]]]:
    def reads(probabilities: torch.Tensor) -> dict[str, list[float]]:
        confidence, digit = probabilities.max(1)
        runner_up = probabilities.topk(2, 1).indices[:, 1]
        per_digit = [digit == d for d in range(10)]
        unsure = confidence < 0.9
        return {
            "share": [m.float().mean().item() for m in per_digit],
            "confidence": [confidence[m].mean().item() for m in per_digit],
            "unsure": [unsure[m].float().mean().item() for m in per_digit],
            # what an unsure read of each digit could also have been: its most frequent second choice
            "runner-up": [torch.bincount(runner_up[m & unsure], minlength=10).argmax().item() for m in per_digit],
        }

    rows, digits = {}, None
    for path in ckpt_paths:
        gan, record = load_generator(path, torch.device("cpu"))
        if digits is None:  # the first checkpoint's data gives the classifier and the real row
            datamodule = datamodule_for(OmegaConf.create({"ckpt_path": path}), record["data"])
            stacked, _ = extractor_for(datamodule, train_if_missing=False)
            if not hasattr(stacked, "digits"):
                raise SystemExit(f"{path} was not trained on data=stacked_mnist")
            digits = stacked.digits.eval()
            real = real_splits(datamodule.digit_data())["train_images"]  # (N, H, W) uint8
            torch.manual_seed(seed)
            real = real[torch.randperm(len(real))[: 3 * num]]
            rows["real training digits"] = reads(digits(to_model_input(real)).softmax(1))
        torch.manual_seed(seed)
        fakes = torch.cat([gan.generate(num=len(b)) for b in torch.arange(num).split(500)])  # (N, 3, H, W)
        channels = fakes.reshape(-1, 1, *fakes.shape[2:])
        rows[f"{path}: each channel"] = reads(torch.cat([digits(b).softmax(1) for b in channels.split(1000)]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--began", help="a BEGAN checkpoint (experiment=began)")
    parser.add_argument("--wgan", help="a WGAN checkpoint (experiment=wgan)")
    parser.add_argument("--overfit", nargs="+", help="checkpoints of one run, e.g. every step_*.ckpt")
    parser.add_argument("--uci-judge", action="store_true", help="how well the UCI classifier reads MNIST digits")
    parser.add_argument("--stackgan-condition", nargs="+", help="StackGAN checkpoints: accuracy with c drawn and at mu")
    parser.add_argument(
        "--stacked-reads", nargs="+", help="Stacked MNIST checkpoints: the classifier's reads per digit"
    )
    parser.add_argument("--num-samples", type=int, default=2000, help="images per row (bench/quality.py's 2,000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    checkpoints = [
        *filter(None, (args.began, args.wgan)),
        *(args.overfit or []),
        *(args.stackgan_condition or []),
        *(args.stacked_reads or []),
    ]
    if not (checkpoints or args.uci_judge):
        parser.error(
            "pass --began, --wgan, --overfit, --stackgan-condition or --stacked-reads with checkpoint paths, or --uci-judge"
        )
    for path in checkpoints:
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
    if args.uci_judge:
        print_class_accuracy("The committed UCI classifier (CycleGAN's MNIST -> UCI judge)", uci_judge_rows(), 1)
    if args.stackgan_condition:
        rows = stackgan_condition_rows(args.stackgan_condition, args.num_samples, args.seed)
        header = f"StackGAN caption class accuracy, {args.num_samples} random captions (checkpoint, condition)"
        print_class_accuracy(header, rows, 2)
    if args.stacked_reads:
        print(
            f"\nThe MNIST classifier's reads, per digit 0-9: {args.num_samples} stacks' channels, "
            f"{3 * args.num_samples} real digits\n\n| images | read as the digit (%) | mean confidence | "
            f"read with confidence < 0.9 (%) | their most frequent runner-up |\n|---|---|---|---|---|"
        )
        for name, r in stacked_read_rows(args.stacked_reads, args.num_samples, args.seed).items():
            share, confidence, unsure = (
                " ".join(f"{v * k:.{d}f}" for v in r[c])
                for c, k, d in (("share", 100, 1), ("confidence", 1, 2), ("unsure", 100, 0))
            )
            print(f"| {name} | {share} | {confidence} | {unsure} | {' '.join(map(str, r['runner-up']))} |")
    if args.overfit:
        print(
            f"\nD's verdicts, {args.num_samples} images per set (training: what D learned from; held out: the validation split)\n"
        )
        print(
            "| step | r train | r held out | D train | D held out | D fake | augment p |\n|---|---|---|---|---|---|---|"
        )
        for r in overfit_rows(args.overfit, args.num_samples, args.seed).values():
            print(
                f"| {r['step']:,} | {r['r train']:+.3f} | {r['r held out']:+.3f} | {r['D train']:+.3f} "
                f"| {r['D held out']:+.3f} | {r['D fake']:+.3f} | {r['augment p']:.3f} |"
            )


if __name__ == "__main__":
    main()
