"""Training throughput (real images/s) of the project's LightningModule + DataModule against two plain loops.

    python bench/throughput.py                     # model=mlp and model=dcgan, batch 100, CPU, 7 repeats
    python bench/throughput.py --project-overrides model.compile=true   # the project's step compiled (inductor)

- project: ``ganlab.models.gan.GAN`` + the MNIST DataModule from ``conf/`` (model=<m> loss=nsgan) in a bare
  ``lightning.Trainer`` (no logger, checkpoints or progress bar: what the framework costs, not its extras).
- seed loop: the course material's loop: torchvision ``MNIST`` with ToTensor + Normalize, a ``DataLoader``,
  BCE on D's output, the same G and D, G then D on the same generated batch.
- raw loop: the project's step (D on fresh fakes, then G on fresh noise, the same loss objects) over the
  training images preloaded as one tensor: the floor any framework pays on top of the maths.

Every variant runs in its own process (peak RSS is per process), repeats are interleaved so that a burst of
load elsewhere hits all variants alike, and the median is reported with the load average, the per-repeat
range of project / raw, and the same ratio in CPU time (steadier than wall time on a shared machine). Data: the
MNIST DataModule's source (full MNIST under data/, else the bundled sample).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ("project", "seed", "raw")
DEFAULT_STEPS = {"mlp": 400, "dcgan": 40}  # timed generator updates per run, after the warm-up


def build(overrides: list[str]):
    """The GAN and the DataModule exactly as ``train(cfg)`` builds them from ``python train.py <overrides>``."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate

    import ganlab.config.family_schemas  # noqa: F401  (registers the config schemas)

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, "data.download=false"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    gan = instantiate(cfg.model, loss=cfg.loss, optimizer=cfg.optimizer, _recursive_=False, _convert_="all")
    datamodule = instantiate(cfg.data, discriminator_steps=gan.discriminator_steps)
    datamodule.setup()
    return gan, datamodule


def bench_overrides(model: str, batch_size: int) -> list[str]:
    return [f"model={model}", "loss=nsgan", f"data.batch_size={batch_size}"]


def clocks() -> tuple[float, float]:
    """(wall, CPU) time. CPU time (this process's, all threads) counts the work done, not the waits for a core
    that other processes hold: on a shared, loaded machine it is the steadier measure of the two."""
    return time.perf_counter(), time.process_time()


def elapsed(start: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = clocks()
    return wall - start[0], cpu - start[1]


def rates(images: int, seconds: tuple[float, float]) -> dict[str, float]:
    return {"images_per_s": images / seconds[0], "images_per_cpu_s": images / seconds[1]}


def time_fit(gan, datamodule, warmup: int, steps: int) -> tuple[float, float]:
    """(wall, CPU) seconds of ``steps`` generator updates after ``warmup`` ones, in a bare ``lightning.Trainer``."""
    import lightning as L

    class StepClock(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.global_step == warmup:
                self.start = clocks()

        def on_train_end(self, trainer, pl_module):
            self.seconds = elapsed(self.start)

    clock = StepClock()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=warmup + steps,
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        callbacks=[clock],
    )
    trainer.fit(gan, datamodule=datamodule)
    return clock.seconds


def run_project(model: str, batch_size: int, warmup: int, steps: int, overrides: list[str] = ()) -> dict[str, float]:
    gan, datamodule = build([*bench_overrides(model, batch_size), *overrides])
    return rates(steps * batch_size, time_fit(gan, datamodule, warmup, steps))


def run_raw(model: str, batch_size: int, warmup: int, steps: int) -> float:
    gan, datamodule = build(bench_overrides(model, batch_size))
    G, D, loss = gan.generator, gan.discriminator, gan.loss
    d_opt, g_opt = (torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.5, 0.999)) for net in (D, G))
    images = datamodule.train_set.tensors[0].unsqueeze(1).float().div(127.5).sub(1)  # (N, 1, 28, 28) in [-1, 1]
    latent_dim, done, start = gan.hparams.latent_dim, 0, 0.0
    while True:
        for rows in torch.randperm(len(images)).split(batch_size):
            if len(rows) < batch_size:
                continue
            if done == warmup:
                start = clocks()
            real = images[rows]
            with torch.no_grad():
                fake = G(torch.randn(batch_size, latent_dim))
            d_loss = loss.d_loss(D(real), D(fake))
            d_opt.zero_grad()
            d_loss.backward()
            d_opt.step()
            g_loss = loss.g_loss(D(G(torch.randn(batch_size, latent_dim))))
            g_opt.zero_grad()
            g_loss.backward()
            g_opt.step()
            done += 1
            if done == warmup + steps:
                return rates(steps * batch_size, elapsed(start))


def run_seed(model: str, batch_size: int, warmup: int, steps: int) -> float:
    from torch import nn
    from torchvision import datasets, transforms

    from ganlab.data.idx import read_idx, write_idx
    from ganlab.data.sources import find_idx_files

    gan, datamodule = build(bench_overrides(model, batch_size))
    G, D = gan.generator, gan.discriminator
    with tempfile.TemporaryDirectory() as root:  # torchvision wants the plain IDX files in <root>/MNIST/raw
        raw = Path(root) / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for path in find_idx_files(datamodule.source).values():
            write_idx(raw / path.name.removesuffix(".gz"), read_idx(path).numpy())
        dataset = datasets.MNIST(
            root,
            train=True,
            download=False,
            transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))]),
        )
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True)
        bce = nn.BCEWithLogitsLoss()  # the seeds' Sigmoid + BCELoss, on D's logits
        d_opt, g_opt = (torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.5, 0.999)) for net in (D, G))
        valid, fake_label = torch.ones(batch_size), torch.zeros(batch_size)
        done, start = 0, 0.0
        while True:
            for real, _ in loader:
                if done == warmup:
                    start = clocks()
                generated = G(torch.randn(batch_size, gan.hparams.latent_dim))
                g_loss = bce(D(generated), valid)
                g_opt.zero_grad()
                g_loss.backward()
                g_opt.step()
                d_loss = (bce(D(real), valid) + bce(D(generated.detach()), fake_label)) / 2
                d_opt.zero_grad()
                d_loss.backward()
                d_opt.step()
                done += 1
                if done == warmup + steps:
                    return rates(steps * batch_size, elapsed(start))


def worker(args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    if args.variant == "project":
        measured = run_project(args.model, args.batch_size, args.warmup, args.steps, args.project_overrides)
    else:
        run = {"seed": run_seed, "raw": run_raw}[args.variant]
        measured = run(args.model, args.batch_size, args.warmup, args.steps)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps(measured | {"peak_rss_mb": peak_mb}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mlp", "dcgan"])
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--steps", type=int, default=None, help="timed generator updates (default: 400 mlp, 40 dcgan)")
    parser.add_argument(
        "--project-overrides",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="config overrides for the project's run only, e.g. model.compile=true (the loops stay as written)",
    )
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)  # worker mode
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        return worker(args)

    load_before = os.getloadavg()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; load average before: {load_before[0]:.2f}"
        + (f"; the project with {' '.join(args.project_overrides)}" if args.project_overrides else "")
    )
    rows = []
    for model in args.models:
        steps = args.steps or DEFAULT_STEPS.get(model, 100)
        runs: dict[str, list[dict]] = {variant: [] for variant in VARIANTS}
        for _ in range(args.repeats):
            for variant in VARIANTS:
                command = [
                    sys.executable,
                    __file__,
                    "--variant",
                    variant,
                    "--model",
                    model,
                    "--batch-size",
                    str(args.batch_size),
                    "--warmup",
                    str(args.warmup),
                    "--steps",
                    str(steps),
                ]
                if variant == "project" and args.project_overrides:
                    command += ["--project-overrides", *args.project_overrides]
                out = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
                if out.returncode:
                    sys.exit(f"{variant} {model} failed:\n{out.stderr[-3000:]}")
                runs[variant].append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(
                    f"  {model} {variant} run {len(runs[variant])}: {runs[variant][-1]['images_per_s']:,.0f} img/s "
                    f"({runs[variant][-1]['images_per_cpu_s']:,.0f} per CPU second)",
                    file=sys.stderr,
                    flush=True,
                )
        median = {v: statistics.median(r["images_per_s"] for r in runs[v]) for v in VARIANTS}
        cpu = {v: statistics.median(r["images_per_cpu_s"] for r in runs[v]) for v in VARIANTS}
        # The ratio per repeat (the three variants of one repeat ran back to back, under about the same load).
        ratios = [p["images_per_s"] / r["images_per_s"] for p, r in zip(runs["project"], runs["raw"])]
        cpu_ratios = [p["images_per_cpu_s"] / r["images_per_cpu_s"] for p, r in zip(runs["project"], runs["raw"])]
        peak = {v: max(r["peak_rss_mb"] for r in runs[v]) for v in VARIANTS}
        rows.append((model, steps, median, cpu, ratios, cpu_ratios, peak, runs))
    load_after = os.getloadavg()

    print(
        f"\nbatch {args.batch_size}, CPU, {torch.get_num_threads()} threads, median of {args.repeats} interleaved runs; load average after: {load_after[0]:.2f}\n"
    )
    print(
        "| model | steps | project img/s | seed loop img/s | raw loop img/s | project / seed | project / raw (median, per-repeat range) "
        "| project / raw in CPU time (median, range) | peak RSS MB (project / seed / raw) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for model, steps, median, cpu, ratios, cpu_ratios, peak, _ in rows:
        print(
            f"| {model} | {steps} | {median['project']:,.0f} | {median['seed']:,.0f} | {median['raw']:,.0f} | "
            f"{median['project'] / median['seed']:.2f}x | {median['project'] / median['raw']:.2f}x "
            f"({statistics.median(ratios):.2f}x, {min(ratios):.2f}-{max(ratios):.2f}) | "
            f"{cpu['project'] / cpu['raw']:.2f}x ({statistics.median(cpu_ratios):.2f}x, {min(cpu_ratios):.2f}-{max(cpu_ratios):.2f}) | "
            f"{peak['project']:.0f} / {peak['seed']:.0f} / {peak['raw']:.0f} |"
        )
    print("\nall runs (wall img/s; CPU img/s):")
    for model, _, _, _, _, _, _, runs in rows:
        print(f"  {model}: " + "; ".join(f"{v} {[round(r['images_per_s']) for r in runs[v]]}" for v in VARIANTS))
        print(
            f"  {model} (CPU): " + "; ".join(f"{v} {[round(r['images_per_cpu_s']) for r in runs[v]]}" for v in VARIANTS)
        )


if __name__ == "__main__":
    main()
