"""Mode coverage on Stacked MNIST beside the published tables: modes hit of 1,000 and KL(modes || uniform).

    python bench/stacked_mnist.py                           # the rows below, seeds 0 1 2, 3,000 updates each
    python bench/stacked_mnist.py --configs default --seeds 0 --steps 1000
    python bench/stacked_mnist.py --report                  # the table of the rows already in <out>/results.jsonl

Each row is ``python train.py data=stacked_mnist <overrides> trainer.max_steps=<N> seed=<s>`` then
``python evaluate.py ckpt_path=<run>/checkpoints/last.ckpt num_samples=26000``, run in this process as
bench/quality.py runs its rows: 26,000 samples as published, each channel read by the MNIST classifier of the
digits (``ganlab.metrics.modes``). The real row is 26,000 stacks of the training digits scored the same way:
the floor every KL is read against (finite sampling and classifier error; 0 is out of reach). Beside each row:
the budget in generator updates and images seen, D's size as a share of G's (PacGAN's Table 3 shrinks D to 1/4),
the KL split into what the channels' uneven digit shares and their dependence on one another give
(``ganlab.metrics.modes.kl_parts``; sampling alone puts about 0.019 of 26,000 samples' KL in the dependence), and
the diagnostic of a collapse: the digits each channel draws at under half their share.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch
from hydra.utils import instantiate

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
import quality  # noqa: E402  (bench/ on the path first)

from ganlab.data.stacked_mnist import StackedMNISTDataModule, draw_stacks  # noqa: E402
from ganlab.metrics.classifier import extractor_for, to_model_input  # noqa: E402
from ganlab.metrics.modes import (  # noqa: E402
    PUBLISHED_SAMPLES,
    kl_parts,
    missing_digits,
    mode_coverage,
    modes_of_digits,
    sampling_floor,
)
from ganlab.run.console import quiet_library_messages  # noqa: E402

# (source, method, D's size, modes, KL): the published rows, 26,000 samples each, as the papers print them (None:
# not copied here).
PUBLISHED = [
    ("PacGAN Table 2 (VEEGAN's networks)", "DCGAN", "as G", 99.0, 3.40),
    ("PacGAN Table 2 (VEEGAN's networks)", "ALI", "as G", 16.0, 5.40),
    ("PacGAN Table 2 (VEEGAN's networks)", "Unrolled GAN", "as G", 48.7, 4.32),
    ("PacGAN Table 2 (VEEGAN's networks)", "VEEGAN", "as G", 150.0, 2.95),
    ("PacGAN Table 2 (VEEGAN's networks)", "PacDCGAN2", "as G", 1000.0, 0.06),
    ("PacGAN Table 3 (D at 1/4 size)", "DCGAN", "1/4", 30.6, 5.99),
    ("PacGAN Table 3 (D at 1/4 size)", "Unrolled GAN", "1/4", 327.0, 4.66),
    ("PacGAN Table 3 (D at 1/4 size)", "PacDCGAN4", "1/4", 667.0, 1.81),
    ("R3GAN (Huang et al. 2024), Table 2", "R3GAN", "-", 1000.0, None),  # all modes; its KL: see the paper
]
PAPERS = (
    "PacGAN: Lin, Khetan, Fanti, Oh, NeurIPS 2018 (arXiv:1712.04086), Tables 2 and 3. "
    "R3GAN: Huang, Gokaslan, Kuleshov, Tompkin, NeurIPS 2024 (arXiv:2501.05441), Table 2."
)
CONFIGS = {  # name -> train.py overrides after data=stacked_mnist
    # The DCGAN paper's networks and losses (bench/quality.py's "dcgan + nsgan"): does it collapse as theirs did?
    "DCGAN as published (two-conv D, nsgan, Adam 2e-4)": ["model=dcgan", "loss=nsgan", *quality.PLAIN_DCGAN],
    "default": [],  # its D already has about 1/4 of G's parameters: PacGAN's Table 3 setting
    "default, D at G's size (64 channels)": ["model.discriminator.base_channels=64"],  # Table 2's D/G
    "experiment=quality": ["experiment=quality"],
    # What might close the gap (issue: packing, minibatch statistics, R3GAN's objective), each on the default:
    "default + minibatch std 4": ["model.discriminator.minibatch_std=4"],  # ProGAN's layer, StyleGAN's group of 4
    "default + rpgan (R1, R2 at 0.1, every 4th D step)": ["loss=rpgan", "loss.r1_every=4"],  # R3GAN's loss
    "default + packing 2": ["model.discriminator.packing=2"],  # PacGAN's PacDCGAN2: D judges pairs of images
}
# val/modes and val/fid every 4 epochs of the bundled sample (504 updates), not every 126: at every epoch the
# validations added about a fifth to a run's time (26 s each beside 126 s of updates, two jobs on 2 cores).
VALIDATION = ["callbacks.fid.every_n_epochs=4"]


def row_setting(overrides: list[str], out: Path) -> tuple[float, int]:
    """(D's parameters over G's, the batch size) of the run these overrides make on Stacked MNIST."""
    cfg = quality.compose_app("train", ["data=stacked_mnist", *overrides], out)
    count = lambda net: sum(p.numel() for p in instantiate(net).parameters())  # noqa: E731
    return count(cfg.model.discriminator) / count(cfg.model.generator), cfg.data.batch_size


def missing(mode_shares: list[float]) -> str:
    """ "r: 4 9, b: 1" for the digits each channel draws under half their share; "none" when every one is there."""
    found = missing_digits(mode_shares)
    return ", ".join(f"{'rgb'[c]}: {' '.join(map(str, digits))}" for c, digits in found.items()) or "none"


def real_floor(num_samples: int, seed: int = 0) -> dict:
    """Real stacks of the training digits (the distribution G is fit to) scored as the generated ones: modes, KL."""
    datamodule = StackedMNISTDataModule(root=str(REPO / "data"), download=False)
    datamodule.setup()
    classifier, record = extractor_for(datamodule.digit_data())
    digit_images, _ = datamodule.digits["train"].tensors
    rows = draw_stacks(len(digit_images), num_samples, seed)
    # Each channel is a copy of a digit: the classifier's reading of every digit once gives every stack's mode.
    with torch.no_grad():
        read = torch.cat([classifier.eval()(to_model_input(x)).argmax(1) for x in digit_images.split(1000)])
    modes = modes_of_digits(read[rows])
    shares = torch.bincount(modes, minlength=1000)
    return {**mode_coverage(modes), "parts": kl_parts(shares), "digits": len(digit_images), "extractor": record["key"]}


def kl_split(parts: list[dict]) -> str:
    """ "0.037 / 0.021": the KL from the channels' digit shares, and from their dependence (mean over seeds)."""
    shares = statistics.mean(sum(p["channels"]) for p in parts)
    return f"{shares:.3f} / {statistics.mean(p['dependence'] for p in parts):.3f}"


def print_table(rows: list[dict], real: dict, num_samples: int) -> None:
    print(f"\n{PAPERS}\n")
    print(
        "| source | method | D / G parameters | modes (of 1,000) | KL | KL from digit shares / dependence | budget "
        "| missing digits | seeds | train s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for source, method, size, modes, kl in PUBLISHED:
        kl = "see the paper" if kl is None else f"{kl:.3f}"
        print(f"| {source} | {method} | {size} | {modes:g} | {kl} | | as published | | | |")
    floor = sampling_floor(num_samples)
    print(
        f"| real stacks ({real['digits']:,} training digits) | {num_samples:,} drawn | | {real['modes']} | {real['mode_kl']:.3f} "
        f"| {kl_split([real['parts']])} | sampling alone: {floor:.3f} | | | |"
    )
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["config"], row["generator_updates"]), []).append(row)
    for (name, steps), group in groups.items():
        seeds = ",".join(str(row["seed"]) for row in group)
        images = steps * group[0]["batch_size"]
        missing = "; ".join(dict.fromkeys(row["missing_digits"] for row in group))
        kl_ratio = statistics.mean(row["coverage_kl"] for row in group) / real["mode_kl"]
        print(
            f"| this framework | {name} | {group[0]['d_over_g']:.2f} | {quality.spread([row['modes'] for row in group], '{:g}')} "
            f"| {quality.spread([row['coverage_kl'] for row in group], '{:.3f}')} ({kl_ratio:.1f}x real) "
            f"| {kl_split([kl_parts(row['class_shares']) for row in group])} | {steps:,} G updates, {images:,} images | {missing} | {seeds} "
            f"| {quality.spread([row['train_seconds'] for row in group], '{:.0f}')} |"
        )
    print("\ncommands:")
    for (name, _), group in groups.items():
        print(f"- {name}: `{group[0]['command']}`")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS), help="names from CONFIGS")
    parser.add_argument("--custom", nargs="+", default=[], metavar="NAME=OVERRIDES", help="more rows, as quality.py")
    quality.add_budget_arguments(parser)
    parser.set_defaults(steps=3000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--num-samples", type=int, default=PUBLISHED_SAMPLES)
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "bench" / "stacked_mnist")
    parser.add_argument("--report", action="store_true", help="only print the table of <out>/results.jsonl")
    parser.add_argument("--score-existing", action="store_true", help="score runs already under --out")
    args = parser.parse_args()
    quality.check_budgets(parser, args)
    args.fid_callback = True  # val/modes during training: the runs' TensorBoard shows coverage grow
    results_path = args.out / "results.jsonl"
    quiet_library_messages()
    real = real_floor(args.num_samples)
    if args.report:
        rows = [json.loads(line) for line in results_path.read_text().splitlines()]
        return print_table(rows, real, args.num_samples)

    configs = quality.selected_configs(CONFIGS, args.configs, args.custom)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, overrides in configs.items():
        d_over_g, batch_size = row_setting(overrides, args.out)
        for seed in args.seeds:
            for row in quality.run_rows(name, [*overrides, *VALIDATION], "stacked_mnist", seed, args, args.out):
                row.update(d_over_g=d_over_g, batch_size=batch_size, missing_digits=missing(row["class_shares"]))
                rows.append(row)
                quality.keep(row, results_path, f"{row['modes']} modes, KL {row['coverage_kl']:.3f}")
    print_table(rows, real, args.num_samples)
    print(f"\nrows appended to {results_path}")


if __name__ == "__main__":
    main()
