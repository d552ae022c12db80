"""Seconds per generator update: the project's GAN for given train.py overrides, and the reference loop.

    OMP_NUM_THREADS=1 python bench/step_time.py --steps 100 --configs "" "model.generator.upsample=nearest" reference

Each config runs in this process after ``--warmup`` updates, in a bare ``lightning.Trainer`` (no logger,
checkpoints, validation or progress bar), and configs are interleaved ``--repeats`` times; the median is printed.
``--clock cpu`` (the default) counts this process's CPU seconds (``time.process_time``), which a machine shared
with other jobs inflates far less than wall time; run it with ``OMP_NUM_THREADS=1`` so that one thread does the work.
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch
from throughput import build, clocks, elapsed, time_fit  # bench/ is on the path when run as a script

CLOCKS = ("cpu", "wall")
clock = "cpu"


def project_seconds(overrides: list[str], warmup: int, steps: int, data: str) -> float:
    wall, cpu = time_fit(*build([*overrides, f"data={data}"]), warmup, steps)
    return (cpu if clock == "cpu" else wall) / steps


def reference_seconds(warmup: int, steps: int, data: str) -> float:
    from reference_dcgan import datamodule_for, train_reference

    datamodule, _ = datamodule_for(data, 0)
    images, labels = datamodule.train_set.tensors
    train_images, _ = datamodule.on_after_batch_transfer((images, labels), 0)
    train_reference(train_images, warmup, 0)
    start = clocks()
    train_reference(train_images, steps, 0)
    wall, cpu = elapsed(start)
    return (cpu if clock == "cpu" else wall) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--configs",
        nargs="+",
        default=["", "reference"],
        help='space-separated train.py overrides per config ("" = default), or "reference"',
    )
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data", default="mnist")
    parser.add_argument(
        "--clock", choices=list(CLOCKS), default="cpu", help="cpu: CPU seconds of this process; wall: elapsed seconds"
    )
    args = parser.parse_args()
    global clock
    clock = args.clock
    times: dict[str, list[float]] = {config: [] for config in args.configs}
    for _ in range(args.repeats):
        for config in args.configs:
            torch.manual_seed(0)
            if config == "reference":
                seconds = reference_seconds(args.warmup, args.steps, args.data)
            else:
                seconds = project_seconds(config.split(), args.warmup, args.steps, args.data)
            times[config].append(seconds)
    base = statistics.median(times[args.configs[0]])
    for config, values in times.items():
        median = statistics.median(values)
        print(
            json.dumps(
                {
                    "config": config or "default",
                    "clock": args.clock,
                    "threads": torch.get_num_threads(),
                    "steps": args.steps,
                    "seconds_per_update": round(median, 4),
                    "runs": [round(v, 4) for v in values],
                    "vs_first": round(median / base, 2),
                }
            )
        )


if __name__ == "__main__":
    main()
