"""Sample quality at a fixed budget of generator updates: the seeds' recipes against the project's configs.

    python bench/quality.py                         # MNIST and Fashion-MNIST, 8 configs each, 1,000 updates
    python bench/quality.py --data mnist --steps 200 --num-samples 10000

Each row is ``python train.py <overrides> data=<d> trainer.max_steps=<N> seed=<s>`` followed by
``python evaluate.py ckpt_path=<run>/checkpoints/last.ckpt num_samples=<n>``, run in this process through the
same ``train(cfg)`` and ``evaluate(cfg)`` (the printed commands reproduce a row). Scores are against the test
split, in the feature space of the dataset's domain classifier; runs land in ``outputs/bench/quality/``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

import ganlab.config  # noqa: F401  (registers the config schemas)
from ganlab.evaluate import evaluate
from ganlab.train import train

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {  # name -> train.py overrides
    "seed vanilla GAN (MLP, BCE, batch 100)": ["experiment=seed_vanilla_gan"],
    "seed MSE GAN (MLP, least squares, batch 100)": ["experiment=seed_mse_gan"],
    "mlp + nsgan": ["model=mlp", "loss=nsgan"],
    "mlp + lsgan": ["model=mlp", "loss=lsgan"],
    "dcgan + nsgan": ["model=dcgan", "loss=nsgan"],
    "dcgan + lsgan": ["model=dcgan", "loss=lsgan"],
    "dcgan + hinge": ["model=dcgan", "loss=hinge"],
    "dcgan + wgan_gp": ["model=dcgan", "loss=wgan_gp"],  # last: 5 critic updates per generator update
}


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


def run_row(name: str, overrides: list[str], data: str, args: argparse.Namespace, out_root: Path) -> dict:
    run_dir = out_root / data / name.split(" (")[0].replace(" + ", "_").replace(" ", "_")
    if run_dir.exists():  # a stale last.ckpt there would be scored instead of this run's
        raise SystemExit(f"{run_dir} exists: remove it, or pass another --out")
    train_overrides = [*overrides, f"data={data}", f"trainer.max_steps={args.steps}", f"seed={args.seed}", "data.download=false", "callbacks.progress_bar=null"]
    eval_overrides = [f"ckpt_path={run_dir}/checkpoints/last.ckpt", f"num_samples={args.num_samples}"]
    start = time.perf_counter()
    train(compose_app("train", train_overrides, run_dir))
    train_seconds = time.perf_counter() - start
    results = evaluate(compose_app("evaluate", eval_overrides, run_dir / "evaluate"))
    return {
        "data": data,
        "config": name,
        "seed": args.seed,
        "generator_updates": results["global_step"],
        "train_seconds": train_seconds,
        "command": f"python train.py {' '.join(train_overrides)} hydra.run.dir={run_dir} && python evaluate.py {' '.join(eval_overrides)}".replace(f"{REPO}/", ""),
        **{key: results[key] for key in ("fid", "kid_mean", "kid_std", "classifier_score", "coverage_kl", "classes_covered", "reference", "num_samples")},
        "extractor": results["feature_extractor"]["key"],
    }


def print_tables(rows: list[dict]) -> None:
    for data in dict.fromkeys(row["data"] for row in rows):
        subset = sorted((row for row in rows if row["data"] == data), key=lambda row: list(CONFIGS).index(row["config"]))
        first = subset[0]
        print(f"\n{data}: {first['generator_updates']} generator updates, seed {first['seed']}, {first['num_samples']} samples vs {first['reference']}, features {first['extractor']}\n")
        print("| config | FID | KID x 1000 | classifier score | classes covered | coverage KL | train s |")
        print("|---|---|---|---|---|---|---|")
        best = min(row["fid"] for row in subset)
        for row in subset:
            fid = f"**{row['fid']:.1f}**" if row["fid"] == best else f"{row['fid']:.1f}"
            print(
                f"| {row['config']} | {fid} | {1000 * row['kid_mean']:.1f} +- {1000 * row['kid_std']:.1f} | {row['classifier_score']:.2f} | "
                f"{row['classes_covered']}/10 | {row['coverage_kl']:.3f} | {row['train_seconds']:.0f} |"
            )
        print("\ncommands:")
        for row in subset:
            print(f"- {row['config']}: `{row['command']}`")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["mnist", "fashion_mnist"])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), help="names from CONFIGS (default: all)")
    parser.add_argument("--steps", type=int, default=1000, help="generator updates, the same for every row")
    parser.add_argument("--num-samples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "bench" / "quality")
    parser.add_argument("--report", action="store_true", help="only print the tables of the rows in <out>/results.jsonl")
    args = parser.parse_args()
    results_path = args.out / "results.jsonl"
    if args.report:
        return print_tables([json.loads(line) for line in results_path.read_text().splitlines()])

    print(f"{platform.platform()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for data in args.data:
        for name in args.configs:
            row = run_row(name, CONFIGS[name], data, args, args.out)
            rows.append(row)
            with results_path.open("a") as f:  # survives an interrupted benchmark
                f.write(json.dumps(row) + "\n")
            print(f"[{data}] {name}: FID {row['fid']:.2f} ({row['train_seconds']:.0f} s)", flush=True)
    print_tables(rows)
    print(f"\nrows appended to {results_path}")


if __name__ == "__main__":
    main()
