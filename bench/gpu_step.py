"""Milliseconds per generator update on one GPU (or, without one, the CPU): the default run (``python train.py accelerator=gpu``) beside a
hand-written loop of the same networks, for several batch sizes and precisions.

    python bench/gpu_step.py                                   # batch 64 128 512 x 32-true bf16-mixed
    python bench/gpu_step.py --batch-sizes 64 --overrides model.compile=true
    python bench/gpu_step.py --pytest                          # then pytest tests/test_gpu.py, in the same call

- project: ``train(cfg)`` of the default config (dcgan, spectral-norm D, hinge, Adam 2e-3, EMA, divergence
  guard, TensorBoard logging every 10 updates, the progress bar) with ``accelerator=gpu``; validation's FID off (it is not a
  training step). Every callback and logger of the default run is on.
- raw: the same G and D, the same loss objects and Adam settings, the training images resident on the GPU and
  indexed by ``torch.randint``, ``torch.autocast`` for bf16: D on fresh fakes, then G. No EMA, no guard, no
  logging: the floor a framework pays on top of.

Per update: the median of the intervals between CUDA events recorded at the start of consecutive training
batches (``--steps`` of them after ``--warmup``; an epoch's end shows as one outlier the median ignores); device
kernels (CUDA activities) and host synchronisations (``aten::_local_scalar_dense`` and CUDA stream/device/event
syncs on the CPU side) over ``--profile-steps`` updates, counted with ``torch.profiler``. Prints a table; with
``--json PATH`` writes every measurement too.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import open_dict
from quality import compose_app  # bench/ is on the path when run as a script
from torch.profiler import DeviceType, ProfilerActivity, profile

from ganlab.run.console import quiet_library_messages
from ganlab.train import train

REPO = Path(__file__).resolve().parents[1]
SYNC_CALLS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize")
LAUNCH_CALLS = ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernelEx", "cudaGraphLaunch")


def counts(prof, updates: int) -> dict[str, float]:
    """Kernels, launches and host syncs per update from a finished profile."""
    events = prof.events()
    kernels = sum(1 for e in events if e.device_type == DeviceType.CUDA) or sum(len(e.kernels) for e in events)
    launches = sum(1 for e in events if e.name in LAUNCH_CALLS)
    # Not those inside a fused optimizer kernel: on the CPU it reads each step count back, on a GPU on the device.
    scalar_reads = sum(
        1
        for e in events
        if e.name == "aten::_local_scalar_dense"
        and not any(a.name.startswith("aten::_fused_adam") for a in _ancestors(e))
    )
    syncs = sum(1 for e in events if e.name in SYNC_CALLS)
    top_level = sum(1 for e in events if e.name.startswith("aten::") and not _has_aten_parent(e))
    return {
        "kernels": kernels / updates,
        "launches": launches / updates,
        "scalar_reads": scalar_reads / updates,
        "syncs": syncs / updates,
        "top_level_aten": top_level / updates,
    }


def _ancestors(event):
    parent = event.cpu_parent
    while parent is not None:
        yield parent
        parent = parent.cpu_parent


def _has_aten_parent(event) -> bool:
    return any(a.name.startswith("aten::") for a in _ancestors(event))


class Marks:
    """Points in time: CUDA events on a GPU (the device's time, no host sync), the host clock on a CPU."""

    def __init__(self):
        self.cuda, self.points = torch.cuda.is_available(), []

    def mark(self) -> None:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.points.append(event)
        else:
            self.points.append(time.perf_counter())

    def milliseconds(self) -> list[float]:
        """The intervals between consecutive marks."""
        if self.cuda:
            torch.cuda.synchronize()
            return [a.elapsed_time(b) for a, b in zip(self.points, self.points[1:])]
        return [(b - a) * 1000 for a, b in zip(self.points, self.points[1:])]


def activities() -> list[ProfilerActivity]:
    return [ProfilerActivity.CPU, ProfilerActivity.CUDA] if torch.cuda.is_available() else [ProfilerActivity.CPU]


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class StepClock(L.Callback):
    """A mark at the start of each training batch after ``warmup``; a profile over the last batches."""

    def __init__(self, warmup: int, steps: int, profile_steps: int):
        self.warmup, self.steps, self.profile_steps = warmup, steps, profile_steps
        self.batches, self.marks, self.prof, self.profile_counts = 0, Marks(), None, {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        timed = self.batches - self.warmup
        if 0 <= timed <= self.steps:
            self.marks.mark()
        if timed == self.steps:
            self.prof = profile(activities=activities())
            self.prof.__enter__()
        if timed == self.steps + self.profile_steps:
            self.stop_profile()
        self.batches += 1

    def stop_profile(self):
        if self.prof is not None:
            synchronize()
            self.prof.__exit__(None, None, None)
            self.profile_counts = counts(self.prof, self.profile_steps)
            self.prof = None

    def on_train_end(self, trainer, pl_module):
        self.stop_profile()


def run_project(batch_size: int, precision: str, args: argparse.Namespace) -> dict:
    total = args.warmup + args.steps + args.profile_steps + 1
    overrides = [
        f"accelerator={'gpu' if torch.cuda.is_available() else 'cpu'}",
        f"trainer.precision={precision}",
        f"data.batch_size={batch_size}",
        f"trainer.max_steps={total}",
        "data.download=false",
        "callbacks.fid=null",
        "callbacks.best_fid_checkpoint=null",
        *args.overrides,
    ]
    with tempfile.TemporaryDirectory() as out:
        cfg = compose_app("train", overrides, Path(out))
        with open_dict(cfg), open_dict(cfg.callbacks):
            cfg.callbacks.step_clock = {
                "_target_": "gpu_step.StepClock",
                "warmup": args.warmup,
                "steps": args.steps,
                "profile_steps": args.profile_steps,
            }
        result = train(cfg)
        # Built by Hydra from the module ``gpu_step``, which is not this ``__main__``: found by name.
        clock = next(cb for cb in result["trainer"].callbacks if type(cb).__name__ == "StepClock")
        ms = clock.marks.milliseconds()
    return {"ms": ms, **clock.profile_counts}


def run_raw(batch_size: int, precision: str, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as out:
        cfg = compose_app("train", [f"data.batch_size={batch_size}", "data.download=false", *args.overrides], Path(out))
    gan = instantiate(cfg.model, loss=cfg.loss, optimizer=cfg.optimizer, _recursive_=False, _convert_="all")
    datamodule = instantiate(cfg.data, discriminator_steps=1)
    datamodule.setup("fit")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    G, D, loss = copy.deepcopy(gan.generator).to(device), copy.deepcopy(gan.discriminator).to(device), gan.loss
    opt = cfg.optimizer
    d_opt = torch.optim.Adam(D.parameters(), lr=opt.discriminator.lr, betas=tuple(opt.discriminator.betas), fused=True)
    g_opt = torch.optim.Adam(G.parameters(), lr=opt.generator.lr, betas=tuple(opt.generator.betas), fused=True)
    images = datamodule.train_set.tensors[0].to(device)  # uint8 (N, H, W) or (N, C, H, W)
    if images.dim() == 3:
        images = images.unsqueeze(1)
    latent_dim = gan.hparams.latent_dim
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16-mixed")

    def update():
        real = images[torch.randint(len(images), (batch_size,), device=device)].float().div_(127.5).sub_(1)
        with autocast:
            with torch.no_grad():
                fake = G(torch.randn(batch_size, latent_dim, device=device))
            d_loss = loss.d_loss(D(real), D(fake))
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()
        with autocast:
            g_loss = loss.g_loss(D(G(torch.randn(batch_size, latent_dim, device=device))))
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()

    for _ in range(args.warmup):
        update()
    marks = Marks()
    for _ in range(args.steps):
        marks.mark()
        update()
    marks.mark()
    with profile(activities=activities()) as prof:
        for _ in range(args.profile_steps):
            update()
        synchronize()
    return {"ms": marks.milliseconds(), **counts(prof, args.profile_steps)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 128, 512])
    parser.add_argument("--precisions", nargs="+", default=["32-true", "bf16-mixed"])
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--profile-steps", type=int, default=10)
    parser.add_argument("--overrides", nargs="*", default=[], help="train.py overrides for both variants")
    parser.add_argument("--json", type=Path, help="write every measurement here")
    parser.add_argument("--pytest", action="store_true", help="then run pytest tests/test_gpu.py")
    parser.add_argument("--pytest-workers", type=int, default=0, help="pytest-xdist processes sharing the GPU")
    args = parser.parse_args()
    quiet_library_messages()
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({torch.get_num_threads()} threads)"
    print(f"{name}, torch {torch.__version__}, lightning {L.__version__}; overrides: {args.overrides}", flush=True)
    rows = []
    for batch_size in args.batch_sizes:
        for precision in args.precisions:
            for variant, run in (("project", run_project), ("raw", run_raw)):
                start = time.perf_counter()
                try:
                    measured = run(batch_size, precision, args)
                except Exception as error:  # one failing setting must not cost the others' numbers
                    print(f"{variant} batch {batch_size} {precision} failed: {type(error).__name__}: {error}")
                    measured = {"error": f"{type(error).__name__}: {error}"}
                measured |= {"variant": variant, "batch_size": batch_size, "precision": precision}
                measured["seconds"] = time.perf_counter() - start
                rows.append(measured)
                if "ms" in measured:
                    print(
                        f"  {variant} batch {batch_size} {precision}: {statistics.median(measured['ms']):.2f} ms/update, "
                        f"{measured.get('kernels', float('nan')):.0f} kernels, {measured.get('syncs', float('nan')):.1f} syncs "
                        f"({measured['seconds']:.0f} s)",
                        flush=True,
                    )
    if args.json:
        args.json.write_text(json.dumps({"device": name, "torch": torch.__version__, "rows": rows}, indent=1))
    print(f"\n{name}; median of {args.steps} updates after {args.warmup}; counts over {args.profile_steps} updates\n")
    print(
        "| batch | precision | project ms/update (p10-p90) | raw ms/update | raw / project speed | project img/s "
        "| kernels per update (project / raw) | host syncs per update (project / raw) | scalar reads (project) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    by_key = {(r["variant"], r["batch_size"], r["precision"]): r for r in rows}
    for batch_size in args.batch_sizes:
        for precision in args.precisions:
            project, raw = by_key[("project", batch_size, precision)], by_key[("raw", batch_size, precision)]
            if "ms" not in project or "ms" not in raw:
                print(f"| {batch_size} | {precision} | {project.get('error', '')} | {raw.get('error', '')} |")
                continue
            p, r = statistics.median(project["ms"]), statistics.median(raw["ms"])
            deciles = statistics.quantiles(project["ms"], n=10)
            print(
                f"| {batch_size} | {precision} | {p:.2f} ({deciles[0]:.2f}-{deciles[-1]:.2f}) | {r:.2f} | {r / p:.2f}x "
                f"| {batch_size * 1000 / p:,.0f} | {project['kernels']:.0f} / {raw['kernels']:.0f} "
                f"| {project['syncs']:.1f} / {raw['syncs']:.1f} | {project['scalar_reads']:.1f} |"
            )
    if args.pytest:
        sys.stdout.flush()
        workers = ["-n", str(args.pytest_workers)] if args.pytest_workers else []
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *workers, "tests/test_gpu.py"]
        sys.exit(subprocess.call(command, cwd=REPO))


if __name__ == "__main__":
    main()
