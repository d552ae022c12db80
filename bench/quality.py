"""Sample quality at a fixed budget of generator updates: the seeds' recipes against the project's configs.

    python bench/quality.py                         # MNIST and Fashion-MNIST, 8 configs each, 1,000 updates
    python bench/quality.py --data mnist --steps 200 --num-samples 10000
    python bench/quality.py --data mnist --steps 1000 --seeds 0 1 2 --configs "reference DCGAN (PyTorch-GAN)" "default (dcgan, five-conv SN D, hinge, Adam 2e-3, EMA)"
    python bench/quality.py --data mnist --steps 10000 --also-at 3000 5000 7500 --configs "reference DCGAN (PyTorch-GAN)"
    python bench/quality.py --data mnist --steps 20000 --resume-from 10000 --also-at 15000 --configs "experiment=quality"  # on from its 10k run

Each row is ``python train.py <overrides> data=<d> trainer.max_steps=<N> seed=<s>`` followed by
``python evaluate.py ckpt_path=<run>/checkpoints/last.ckpt num_samples=<n>``, run in this process through the
same ``train(cfg)`` and ``evaluate(cfg)`` (the printed commands reproduce a row). Scores are against the test
split, in the feature space of the dataset's domain classifier; runs land in ``outputs/bench/quality/``.
The reference row is PyTorch-GAN's DCGAN loop (``bench/reference_dcgan.py``) on the same training split, scored
the same way. ``--configs "real data (training split)" "real data (validation split)"`` score real images the
same way, untrained: the floor every row is read against. With several ``--seeds`` the tables show the mean and
the spread (min to max) per config.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

import ganlab.config.family_schemas  # noqa: F401  (registers the config schemas that conf/ extends)
from ganlab.evaluate import evaluate
from ganlab.run.console import quiet_library_messages
from ganlab.train import train

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
import reference_dcgan  # noqa: E402  (bench/ on the path first)

# The DCGAN paper's networks and Adam: the two-conv D at 64 channels, no spectral norm, no EMA, Adam 2e-4.
PLAIN_DCGAN = [
    *("model.discriminator.spectral_norm=false", "model.discriminator.deep=false"),
    *("model.discriminator.base_channels=64", "optimizer=adam", "callbacks.ema=null"),
]
CONFIGS = {  # name -> train.py overrides
    "seed vanilla GAN (MLP, BCE, batch 100)": ["experiment=seed_vanilla_gan"],
    "seed MSE GAN (MLP, least squares, batch 100)": ["experiment=seed_mse_gan"],
    "mlp + nsgan": ["model=mlp", "loss=nsgan", "callbacks.ema=null"],
    "mlp + lsgan": ["model=mlp", "loss=lsgan", "callbacks.ema=null"],
    "default (dcgan, five-conv SN D, hinge, Adam 2e-3, EMA)": [],
    "experiment=quality": ["experiment=quality"],
    # The losses on the plain DCGAN (no spectral norm, no EMA): the earlier default was "dcgan + nsgan".
    "dcgan + nsgan": ["model=dcgan", "loss=nsgan", *PLAIN_DCGAN],
    "dcgan + lsgan": ["model=dcgan", "loss=lsgan", *PLAIN_DCGAN],
    "dcgan + hinge": ["model=dcgan", "loss=hinge", *PLAIN_DCGAN],
    "dcgan + wgan_gp": ["model=dcgan", "loss=wgan_gp", *PLAIN_DCGAN],  # last: 5 critic updates per generator update
    reference_dcgan.NAME: None,  # bench/reference_dcgan.py, not train.py
}
DEFAULT_CONFIGS = list(CONFIGS)
CONFIGS |= dict.fromkeys(reference_dcgan.REAL_DATA)  # the real-data floors: asked for by name, no training


def compose_app(name: str, overrides: list[str], output_dir: Path):
    """The config ``python <name>.py <overrides>`` would get, writing into ``output_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        del cfg.hydra
    return cfg


def slug(name: str) -> str:
    # No "=" in a run dir: a path with one breaks the ckpt_path= override that scores it.
    short = name.split(" (")[0].replace(" + ", "_").replace(", ", "_").replace(" ", "_")
    return short.replace("/", "-").replace("=", "-")


def run_rows(
    name: str, overrides: list[str] | None, data: str, seed: int, args: argparse.Namespace, out_root: Path
) -> list[dict]:
    """One config's run: its row at ``--steps``, and one per ``--also-at`` budget, scored from the same run."""
    run_dir = out_root / data / f"{slug(name)}_n{args.steps}_s{seed}"
    budgets = sorted({*args.also_at, args.steps})
    if name in reference_dcgan.REAL_DATA:
        return [reference_dcgan.real_data_row(name, data, seed, args.num_samples)]
    if overrides is None:  # the reference loop: its own script, the same data and scores
        if args.resume_from is not None:
            raise SystemExit(f"--resume-from: the reference loop ({name}) does not resume; run it without")
        return reference_dcgan.run_budgets(data, budgets, seed, args.num_samples, save_dir=run_dir)
    if args.score_existing:
        if not (run_dir / "checkpoints" / "last.ckpt").exists():
            raise SystemExit(f"{run_dir}/checkpoints/last.ckpt not found: train it first (without --score-existing)")
    elif run_dir.exists():  # a stale last.ckpt there would be scored instead of this run's
        raise SystemExit(f"{run_dir} exists: remove it, or pass another --out")
    resumed_seconds = 0.0  # the training time of the run this one goes on from
    resume, copy = [], ""
    if args.resume_from is not None:
        shorter = out_root / data / f"{slug(name)}_n{args.resume_from}_s{seed}"
        if not (shorter / "checkpoints" / "last.ckpt").exists():
            raise SystemExit(f"{shorter}/checkpoints/last.ckpt not found: run --steps {args.resume_from} first")
        if not args.score_existing:
            # copy2 keeps the start time (provenance.yaml's mtime); its scores are its own row's, not copied
            shutil.copytree(shorter, run_dir, ignore=shutil.ignore_patterns("evaluate*"))
        resumed_seconds = start_to(shorter / "checkpoints" / "last.ckpt", shorter)
        resume = [f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}"]
        copy = f"cp -r {shorter} {run_dir} && "
    extras = (
        [] if args.fid_callback else ["callbacks.fid=null", "callbacks.best_fid_checkpoint=null"]
    )  # no update depends on them
    train_overrides = [
        *overrides,
        f"data={data}",
        f"trainer.max_steps={args.steps}",
        f"seed={seed}",
        "data.download=false",
        "callbacks.progress_bar=null",
        *extras,
    ]
    train_command = f"{copy}python train.py {' '.join([*train_overrides, *resume])} hydra.run.dir={run_dir}"
    train_seconds = None
    if not args.score_existing:
        start = time.perf_counter()
        train(compose_app("train", [*train_overrides, *resume], run_dir))
        train_seconds = time.perf_counter() - start
    rows = []
    for steps in budgets:
        checkpoint = run_dir / "checkpoints" / ("last.ckpt" if steps == args.steps else f"step_{steps:07d}.ckpt")
        if not checkpoint.exists():
            raise SystemExit(
                f"{checkpoint} not found: --also-at budgets must be multiples of the checkpoint interval "
                "(callbacks.model_checkpoint.every_n_train_steps, 500)"
            )
        eval_overrides = [f"ckpt_path={checkpoint}", f"num_samples={args.num_samples}", f"data={data}"]
        results = evaluate(
            compose_app(
                "evaluate", eval_overrides, run_dir / ("evaluate" + ("" if steps == args.steps else f"_{steps}"))
            )
        )
        if results["global_step"] != steps:
            raise SystemExit(f"{checkpoint} is at {results['global_step']} generator updates, not {steps}")
        if train_seconds is None or steps != args.steps:
            seconds = resumed_seconds + start_to(checkpoint, run_dir)
        else:
            seconds = resumed_seconds + train_seconds
        rows.append(
            {
                "data": data,
                "config": name,
                "seed": seed,
                "generator_updates": results["global_step"],
                "train_seconds": seconds,
                "command": f"{train_command} && python evaluate.py {' '.join(eval_overrides)}".replace(f"{REPO}/", ""),
                **{key: results[key] for key in (*reference_dcgan.SCORES, "reference", "num_samples")},
                "extractor": results["feature_extractor"]["key"],
            }
        )
    return rows


def start_to(checkpoint: Path, run_dir: Path) -> float:
    """Seconds from the (last) start of the run in ``run_dir``, its provenance record, to ``checkpoint``."""
    return checkpoint.stat().st_mtime - (run_dir / "provenance.yaml").stat().st_mtime


def keep(row: dict, results_path: Path, summary: str) -> None:
    """Append a row as soon as it is scored (an interrupted benchmark keeps the rows it finished) and print it."""
    with results_path.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(
        f"[{row['data']}] {row['config']} seed {row['seed']}, {row['generator_updates']} updates: {summary}", flush=True
    )


def selected_configs(catalogue: dict, names: list[str], customs: list[str]) -> dict:
    """The rows to run: ``names`` from ``catalogue``, then each ``--custom`` "name=overrides" (space-separated
    train.py overrides)."""
    configs = {name: catalogue[name] for name in names}
    for custom in customs:
        name, _, overrides = custom.partition("=")
        configs[name] = overrides.split()
    return configs


def add_budget_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=1000, help="generator updates, the same for every row")
    parser.add_argument(
        "--resume-from",
        type=int,
        metavar="STEPS",
        help="train each run on from the same row's run of STEPS updates under --out (its dir copied, resumed from "
        "its last.ckpt; resuming is exact): a 20,000-update row for 10,000 more updates",
    )
    parser.add_argument(
        "--also-at",
        type=int,
        nargs="+",
        default=[],
        metavar="STEPS",
        help="also score each run at these budgets (its checkpoints; multiples of 500): one table per budget",
    )


def check_budgets(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if any(not 0 < steps < args.steps for steps in args.also_at):
        parser.error(f"--also-at budgets must lie between 0 and --steps {args.steps}, got {args.also_at}")
    if args.resume_from is not None:
        if not 0 < args.resume_from < args.steps:
            parser.error(f"--resume-from {args.resume_from} must lie between 0 and --steps {args.steps}")
        if any(steps <= args.resume_from for steps in args.also_at):
            parser.error(f"--also-at budgets must lie above --resume-from {args.resume_from}: score those in its run")


def spread(values: list[float], fmt: str = "{:.1f}") -> str:
    """One value, or the mean and (min to max) of several seeds."""
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.mean(values))} ({fmt.format(min(values))} to {fmt.format(max(values))})"


def pair(group: list[dict], first: str, second: str) -> str:
    """Two k-NN scores as "a / b" (means over seeds); "-" for rows written before they were kept."""
    if any(first not in row or second not in row for row in group):
        return "-"
    return f"{statistics.mean(row[first] for row in group):.2f} / {statistics.mean(row[second] for row in group):.2f}"


def print_tables(rows: list[dict]) -> None:
    order = {name: i for i, name in enumerate(CONFIGS)}
    for data, steps in dict.fromkeys((row["data"], row["generator_updates"]) for row in rows):
        subset = [row for row in rows if row["data"] == data and row["generator_updates"] == steps]
        groups: dict[str, list[dict]] = {}
        for row in sorted(subset, key=lambda row: (order.get(row["config"], len(order)), row["seed"])):
            groups.setdefault(row["config"], []).append(row)
        first = subset[0]
        print(
            f"\n{data}: {f'{steps} generator updates' if steps else 'real data, no training'}, {'/'.join(sorted({str(row['num_samples']) for row in subset}, key=int))} samples vs "
            f"{first['reference']}, features {first['extractor']}\n"
        )
        print(
            "| config | seeds | FID | KID x 1000 | precision / recall | density / coverage | classifier score "
            "| classes covered | coverage KL | train s |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        best = min(statistics.mean(row["fid"] for row in group) for group in groups.values())
        for name, group in groups.items():
            fids = [row["fid"] for row in group]
            fid = spread(fids)
            fid = f"**{fid}**" if statistics.mean(fids) == best else fid
            print(
                f"| {name} | {','.join(str(row['seed']) for row in group)} | {fid} | {spread([1000 * row['kid_mean'] for row in group])} | "
                f"{pair(group, 'precision', 'recall')} | {pair(group, 'density', 'coverage')} | "
                f"{spread([row['classifier_score'] for row in group], '{:.2f}')} | {spread([row['classes_covered'] for row in group], '{:g}')}/10 | "
                f"{spread([row['coverage_kl'] for row in group], '{:.3f}')} | {spread([row['train_seconds'] for row in group], '{:.0f}')} |"
            )
        print("\ncommands:")
        for name, group in groups.items():
            print(f"- {name}: `{group[0]['command']}`")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["mnist", "fashion_mnist"])
    parser.add_argument(
        "--configs",
        nargs="*",
        default=DEFAULT_CONFIGS,
        help="names from CONFIGS (default: the seeds' recipes, the base configs and the reference)",
    )
    parser.add_argument(
        "--custom",
        nargs="+",
        default=[],
        metavar="NAME=OVERRIDES",
        help='more rows: "name=model=dcgan loss=hinge ..." (space-separated train.py overrides)',
    )
    add_budget_arguments(parser)
    parser.add_argument("--num-samples", type=int, default=2000)
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0], help="one run per seed: tables show mean and spread"
    )
    parser.add_argument(
        "--fid-callback",
        action="store_true",
        help="keep the FID callback during training (it changes no update, costs time)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "bench" / "quality")
    parser.add_argument(
        "--report", action="store_true", help="only print the tables of the rows in <out>/results.jsonl"
    )
    parser.add_argument(
        "--score-existing",
        action="store_true",
        help="score runs already trained under --out (e.g. after their scoring failed) instead of training them",
    )
    args = parser.parse_args()
    check_budgets(parser, args)
    results_path = args.out / "results.jsonl"
    if args.report:
        return print_tables([json.loads(line) for line in results_path.read_text().splitlines()])

    quiet_library_messages()  # what train.py does: Lightning's notices and known deprecations, once per row
    configs = selected_configs(CONFIGS, args.configs, args.custom)
    print(
        f"{platform.platform()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for data in args.data:
        for name, overrides in configs.items():
            for seed in args.seeds:
                for row in run_rows(name, overrides, data, seed, args, args.out):
                    rows.append(row)
                    keep(row, results_path, f"FID {row['fid']:.2f} ({row['train_seconds']:.0f} s)")
    print_tables(rows)
    print(f"\nrows appended to {results_path}")


if __name__ == "__main__":
    main()
