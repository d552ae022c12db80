"""``report.py DIR...``: a table of the jobs of run and sweep dirs, a plot of their ``val/fid`` curves and a mosaic
of their last sample grids, from the run dirs alone (``.hydra/overrides.yaml``, ``result.json``, the CSV log or
else the TensorBoard events, ``samples/step_*.png``)."""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

#: Table columns from the logs: (column, metric, how: "last" or "min").
METRIC_COLUMNS = (
    ("val/fid", "val/fid", "last"),
    ("best val/fid", "val/fid", "min"),
    ("val/kid", "val/kid", "last"),
    ("val/coverage_kl", "val/coverage_kl", "last"),
    ("val/accuracy", "val/accuracy", "last"),
)
SORT_KEYS = [name for name, _, _ in METRIC_COLUMNS] + ["updates", "wall_time_s"]


@dataclass
class Job:
    path: Path
    overrides: dict[str, str] = field(default_factory=dict)
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # metric -> [(step, value)]
    result: dict[str, Any] = field(default_factory=dict)  # result.json
    wall_from_logs: float | None = None

    @property
    def status(self) -> str:
        if self.result.get("status"):
            return str(self.result["status"])
        log = self.path / "train.log"
        if log.is_file() and re.search(r"\[ERROR\]|Traceback", log.read_text(errors="replace")):
            return "failed"
        return "incomplete"  # no result.json: killed, or still running

    def metric(self, name: str, how: str = "last") -> float | None:
        points = self.curves.get(name)
        if not points:
            return None
        values = [v for _, v in points if math.isfinite(v)]
        if not values:
            return None
        return min(values) if how == "min" else values[-1]

    @property
    def updates(self) -> int | None:
        if "updates" in self.result:
            return int(self.result["updates"])
        steps = [s for s, _ in self.curves.get("loss/g", [])]
        return max(steps) + 1 if steps else None  # the logged step is 0-based

    @property
    def wall_time_s(self) -> float | None:
        return self.result.get("wall_time_s", self.wall_from_logs)

    @property
    def last_grid(self) -> Path | None:
        grids = sorted((self.path / "samples").glob("step_*.png"))
        return grids[-1] if grids else None

    def value(self, key: str) -> float | None:
        if key == "updates":
            return self.updates
        if key == "wall_time_s":
            return self.wall_time_s
        for name, metric, how in METRIC_COLUMNS:
            if name == key:
                return self.metric(metric, how)
        raise KeyError(key)


def find_jobs(dirs: list[str | Path]) -> list[Job]:
    """Every run dir (one with ``.hydra/``) at or under the given dirs, in path order (sweep jobs numerically)."""
    found: list[Path] = []
    for d in map(Path, dirs):
        if (d / ".hydra").is_dir():
            found.append(d)
        else:
            found.extend(p.parent for p in d.rglob(".hydra") if p.is_dir())
    key = lambda p: [int(part) if part.isdigit() else part for part in p.parts]  # noqa: E731 (sweep job 10 after 9)
    return [load_job(p) for p in sorted(dict.fromkeys(found), key=key)]


def _read_csv(path: Path) -> dict[str, list[tuple[int, float]]]:
    curves: dict[str, list[tuple[int, float]]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            step = int(float(row.get("step") or 0))
            for name, value in row.items():
                if name in ("step", "epoch") or value in (None, ""):
                    continue
                try:
                    curves.setdefault(name, []).append((step, float(value)))
                except ValueError:
                    pass
    return curves


def _read_tensorboard(log_dir: Path) -> tuple[dict[str, list[tuple[int, float]]], float | None]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    curves: dict[str, list[tuple[int, float]]] = {}
    times: list[float] = []
    for event_file in sorted(log_dir.glob("events.out.tfevents.*")):
        events = EventAccumulator(str(event_file), size_guidance={"scalars": 0, "images": 1, "tensors": 1})
        events.Reload()
        for tag in events.Tags()["scalars"]:
            points = events.Scalars(tag)
            curves.setdefault(tag, []).extend((p.step, p.value) for p in points)
            times.extend(p.wall_time for p in points)
    for points in curves.values():
        points.sort()
    return curves, (max(times) - min(times)) if len(times) > 1 else None


def load_job(path: Path) -> Job:
    job = Job(path)
    overrides_file = path / ".hydra" / "overrides.yaml"
    if overrides_file.is_file():
        for item in yaml.safe_load(overrides_file.read_text()) or []:
            key, _, value = str(item).partition("=")
            job.overrides[key] = value
    result_file = path / "result.json"
    if result_file.is_file():
        job.result = json.loads(result_file.read_text())
    if (path / "csv" / "metrics.csv").is_file():
        job.curves = _read_csv(path / "csv" / "metrics.csv")
    elif (path / "tensorboard").is_dir():
        job.curves, job.wall_from_logs = _read_tensorboard(path / "tensorboard")
    return job


def differing_overrides(jobs: list[Job]) -> list[str]:
    """The override keys whose values are not the same in every job (all of them for a single job)."""
    keys = list(dict.fromkeys(k for job in jobs for k in job.overrides if not k.startswith(("hydra.", "paths."))))
    if len(jobs) == 1:
        return keys
    return [k for k in keys if len({job.overrides.get(k) for job in jobs}) > 1]


def _label(job: Job, root: Path | None) -> str:
    try:
        return str(job.path.relative_to(root)) if root and job.path != root else job.path.name
    except ValueError:
        return str(job.path)


def _fmt(value: float | None, significant: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if significant or abs(value) >= 1e5 else f"{value:.2f}"


def _short_key(key: str) -> str:
    """optimizer.generator.lr -> generator.lr: enough to tell the jobs apart in a legend."""
    return ".".join(key.lstrip("+~").split(".")[-2:])


def table(jobs: list[Job], sort: str = "val/fid", root: Path | None = None) -> tuple[list[str], list[list[str]]]:
    """(header, rows): one row per job, sorted by ``sort`` (ascending, jobs without it last)."""
    keys = differing_overrides(jobs)
    metrics = [
        (name, metric, how)
        for name, metric, how in METRIC_COLUMNS
        if any(job.metric(metric) is not None for job in jobs)
    ]
    header = ["job", *keys, *(name for name, _, _ in metrics), "updates", "wall time", "status"]
    ordered = sorted(jobs, key=lambda job: (job.value(sort) is None, job.value(sort) or 0.0))
    rows = []
    for job in ordered:
        status = job.status
        rows.append(
            [
                _label(job, root),
                *(job.overrides.get(k, "-") for k in keys),
                *(_fmt(job.metric(metric, how), significant="fid" not in name) for name, metric, how in metrics),
                "-" if job.updates is None else str(job.updates),
                "-" if job.wall_time_s is None else f"{job.wall_time_s:.0f}s",
                status if status == "completed" else f"**{status.upper()}**",
            ]
        )
    return header, rows


def format_text(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def format_markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows([[c.strip("*").lower() if c.startswith("**") else c for c in row] for row in rows])


# ---- pictures --------------------------------------------------------------------------------------------
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def plot_fid(jobs: list[Job], labels: list[str], path: Path, metric: str = "val/fid") -> Path | None:
    """The jobs' ``metric`` curves against generator updates, as a PNG (matplotlib, else a plain PIL chart)."""
    curves = [(label, job.curves.get(metric, [])) for job, label in zip(jobs, labels) if job.curves.get(metric)]
    if not curves:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return _plot_with_pil(curves, path, metric)
    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    for i, (label, points) in enumerate(curves):
        ax.plot(
            [s + 1 for s, _ in points],
            [v for _, v in points],
            marker="o",
            markersize=3,
            label=label,
            color=PALETTE[i % len(PALETTE)],
        )
    ax.set_xlabel("generator updates")
    ax.set_ylabel(metric)
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _plot_with_pil(curves: list[tuple[str, list[tuple[int, float]]]], path: Path, metric: str) -> Path:
    from PIL import Image, ImageDraw, ImageFont

    width, height, left, right, top, bottom = 900, 500, 70, 300, 20, 50
    image = Image.new("RGB", (width, height), "white")
    draw, font = ImageDraw.Draw(image), ImageFont.load_default()
    steps = [s + 1 for _, pts in curves for s, _ in pts]
    values = [math.log10(max(v, 1e-9)) for _, pts in curves for _, v in pts]
    x0, x1 = min(steps), max(steps) if max(steps) > min(steps) else min(steps) + 1
    y0, y1 = min(values), max(values) if max(values) > min(values) else min(values) + 1
    to_x = lambda s: left + (s - x0) / (x1 - x0) * (width - left - right)  # noqa: E731
    to_y = lambda v: height - bottom - (v - y0) / (y1 - y0) * (height - top - bottom)  # noqa: E731
    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    for frac in (0, 0.5, 1):
        v = y0 + frac * (y1 - y0)
        draw.text((4, to_y(v) - 6), f"{10**v:.3g}", fill="black", font=font)
        s = x0 + frac * (x1 - x0)
        draw.text((to_x(s) - 10, height - bottom + 6), f"{s:.0f}", fill="black", font=font)
    draw.text((left, height - 20), f"generator updates; {metric} (log scale)", fill="black", font=font)
    for i, (label, points) in enumerate(curves):
        color = PALETTE[i % len(PALETTE)]
        xy = [(to_x(s + 1), to_y(math.log10(max(v, 1e-9)))) for s, v in points]
        if len(xy) > 1:
            draw.line(xy, fill=color, width=2)
        for x, y in xy:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=color)
        draw.line(
            [(width - right + 10, top + 10 + 16 * i), (width - right + 30, top + 10 + 16 * i)], fill=color, width=3
        )
        draw.text((width - right + 35, top + 4 + 16 * i), label[:45], fill="black", font=font)
    image.save(path)
    return path


def mosaic(jobs: list[Job], labels: list[str], path: Path, tile: int = 240) -> Path | None:
    """The jobs' last sample grids side by side, each under its label."""
    from PIL import Image, ImageDraw, ImageFont

    tiles = [(label, job.last_grid) for job, label in zip(jobs, labels) if job.last_grid is not None]
    if not tiles:
        return None
    columns = math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / columns)
    caption = 40
    image = Image.new("RGB", (columns * (tile + 8) + 8, rows * (tile + caption + 8) + 8), "white")
    draw, font = ImageDraw.Draw(image), ImageFont.load_default()
    for i, (label, grid_path) in enumerate(tiles):
        x, y = 8 + (i % columns) * (tile + 8), 8 + (i // columns) * (tile + caption + 8)
        grid = Image.open(grid_path).convert("RGB")
        grid.thumbnail((tile, tile))
        image.paste(grid, (x, y + caption))
        step = grid_path.stem.removeprefix("step_").lstrip("0") or "0"
        for j, line in enumerate([label[:38], label[38:76], f"step {step}"]):
            draw.text((x, y + 1 + 13 * j), line, fill="black", font=font)
    image.save(path)
    return path


def report(dirs: list[str | Path], sort: str = "val/fid", out: str | Path | None = None) -> dict[str, Any]:
    """Build the table, its CSV and Markdown, the FID plot and the mosaic; returns what was written."""
    jobs = find_jobs(dirs)
    if not jobs:
        raise SystemExit(f"no run dirs (with .hydra/) under {', '.join(map(str, dirs))}")
    if sort not in SORT_KEYS:
        raise SystemExit(f"--sort must be one of {', '.join(SORT_KEYS)}, got {sort}")
    root = Path(dirs[0]) if len(dirs) == 1 else None
    out_dir = Path(out) if out else Path(dirs[0])
    out_dir.mkdir(parents=True, exist_ok=True)
    header, rows = table(jobs, sort, root)
    keys = differing_overrides(jobs)
    labels = [
        _label(job, root)
        + (" " + " ".join(f"{_short_key(k)}={job.overrides.get(k, '-')}" for k in keys) if keys else "")
        for job in jobs
    ]
    written = {"csv": out_dir / "report.csv", "markdown": out_dir / "report.md"}
    write_csv(written["csv"], header, rows)
    written["markdown"].write_text(format_markdown(header, rows))
    written["plot"] = plot_fid(jobs, labels, out_dir / "report_fid.png")
    written["mosaic"] = mosaic(jobs, labels, out_dir / "report_samples.png")
    return {"jobs": jobs, "header": header, "rows": rows, "text": format_text(header, rows), "written": written}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A table, a val/fid plot and a sample mosaic of run and sweep dirs.")
    parser.add_argument("dirs", nargs="+", help="run dirs or sweep dirs (outputs/multirun/<time>) or outputs/")
    parser.add_argument(
        "--sort", default="val/fid", choices=SORT_KEYS, help="column to sort by, ascending (default val/fid)"
    )
    parser.add_argument(
        "--out",
        help="where to write report.csv, report.md, report_fid.png, report_samples.png (default: the first DIR)",
    )
    args = parser.parse_args(argv)
    made = report(args.dirs, args.sort, args.out)
    print(made["text"])
    print()
    for what, path in made["written"].items():
        print(f"{what + ':':<10} {path if path else '(nothing to draw: no val/fid or no sample grid yet)'}")
