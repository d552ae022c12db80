"""What a training run prints: the known library noise silenced (by message and category, nothing blanket), and
the closing summary of what the run produced. ``verbose=true`` brings the library messages back."""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path
from typing import Any

from ganlab.callbacks.checkpoint_on_signal import Interrupted
from ganlab.run.hparams_tab import best_fid

# Python warnings a user cannot act on: (message regex, category). Each is matched exactly; every other warning
# still shows.
NOISY_WARNINGS: tuple[tuple[str, type[Warning]], ...] = (
    # Lightning 2.6 calls torch's deprecated LeafSpec; nothing in this project to change.
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning),
    # torchmetrics' KID and Inception Score keep their features; ganlab.metrics bounds them (metrics.num_samples).
    (r"Metric `(Kernel Inception Distance|InceptionScore)` will save all extracted features in buffer", UserWarning),
    # Lightning's 15-line code sample: GAN saves between two whole updates, which is what checkpoints need.
    (r"Using ModelCheckpoint with manual optimization and every_n_train_steps", UserWarning),
    # A run shorter than one validation has no val/fid yet; the summary says so.
    (r"`ModelCheckpoint\(monitor='val/fid'\)` could not find the monitored key", UserWarning),
)

# Lightning's info lines a user cannot act on: (logger name, message regex).
# Lightning's rank_zero_info goes through lightning_utilities' module logger, which lightning.pytorch and
# lightning.fabric each rename on import: both names are filtered.
_RANK_ZERO = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")
NOISY_LOG_RECORDS: tuple[tuple[str, str], ...] = (
    *((name, r"^💡 Tip: ") for name in _RANK_ZERO),  # litlogger / litmodels advertisements
    *((name, r"^`Trainer\(limit_\w+_batches=1(\.0)?\)` was configured so") for name in _RANK_ZERO),
    *((name, r"^(GPU available: False, used: False|TPU available: False|HPU available: False)") for name in _RANK_ZERO),
    *((name, r"^`Trainer.fit` stopped: `max_steps=\d+` reached") for name in _RANK_ZERO),  # the summary says it
    ("lightning.fabric.utilities.seed", r"^Seed set to "),  # the summary names the seed
)


class _DropMessages(logging.Filter):
    """Drops the records whose message matches one of ``patterns`` (a filter on one named logger)."""

    def __init__(self, patterns: list[str]):
        super().__init__()
        self.patterns = [re.compile(p) for p in patterns]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(p.search(message) for p in self.patterns)


def silence_known_warnings() -> None:
    for message, category in NOISY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)


_installed: list[tuple[logging.Logger, _DropMessages]] = []


def quiet_library_messages() -> None:
    """Silence NOISY_WARNINGS and NOISY_LOG_RECORDS for this process (idempotent)."""
    if _installed:
        return
    silence_known_warnings()
    by_logger: dict[str, list[str]] = {}
    for name, pattern in NOISY_LOG_RECORDS:
        by_logger.setdefault(name, []).append(pattern)
    for name, patterns in by_logger.items():
        logger, drop = logging.getLogger(name), _DropMessages(patterns)
        logger.addFilter(drop)
        _installed.append((logger, drop))


def restore_library_messages() -> None:
    """Undo quiet_library_messages' logging filters (the warning filters stay: tests use it)."""
    while _installed:
        logger, drop = _installed.pop()
        logger.removeFilter(drop)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def summary(output_dir: str | Path, result: dict[str, Any], seconds: float, seed: int | None = None) -> str:
    """The lines a run ends with: what it did and where its outputs are."""
    run_dir = Path(output_dir)
    trainer, model, metrics = result["trainer"], result["model"], result["metrics"]
    steps = trainer.global_step
    rate = f", {steps / seconds:.1f} updates/s" if seconds > 0 and steps else ""
    lines = [
        f"Done: {steps:,} generator updates in {_duration(seconds)}{rate}"
        + (f" (seed {seed})" if seed is not None else "")
    ]
    fid, best = metrics.get("val/fid"), best_fid(trainer)
    if fid is None:
        lines.append("  val/fid:      none yet (no validation ran: train longer, or lower trainer.limit_train_batches)")
    else:
        lines.append(f"  val/fid:      {_fmt(fid)} final, {_fmt(best)} best")
    headline = model.headline_metric  # the family's own measure besides FID (ACGAN, SGAN: val/accuracy)
    if headline and headline in metrics:
        lines.append(f"  {headline + ':':<13} {_fmt(metrics[headline], 4)}")
    grids = sorted((run_dir / "samples").glob("step_*.png"))
    if grids:
        lines.append(f"  samples:      {grids[-1]}")
    gif = run_dir / "samples" / "progress.gif"
    if gif.is_file():
        lines.append(f"  animation:    {gif}")
    checkpoints = run_dir / "checkpoints"
    names = [n for n in ("last.ckpt", "best_fid.ckpt") if (checkpoints / n).is_file()]
    if names:
        lines.append(f"  checkpoints:  {checkpoints}/ ({', '.join(names)})")
    if (run_dir / "tensorboard").is_dir():
        lines.append(f"  curves:       tensorboard --logdir {run_dir}")
    return "\n".join(lines)


RESULT_FILE = "result.json"


def _rank_zero() -> bool:
    import os

    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", 0))) == 0


def write_result(
    output_dir: str | Path, seconds: float, result: dict[str, Any] | None = None, error: BaseException | None = None
) -> None:
    """``<run dir>/result.json``: how the run ended (completed, interrupted, failed), its updates, wall time and
    final metrics; what ``report.py`` reads besides the logs. A resumed run overwrites it with its own ending."""
    import json

    if not _rank_zero():
        return
    record: dict[str, Any] = {"status": "completed", "wall_time_s": round(seconds, 2)}
    if result is not None:
        record["updates"] = int(result["trainer"].global_step)
        record["metrics"] = {name: float(value) for name, value in result["metrics"].items()}
        record["best_val_fid"] = best_fid(result["trainer"])
    if error is not None:
        record["status"] = "interrupted" if isinstance(error, (Interrupted, KeyboardInterrupt)) else "failed"
        record["error"] = f"{type(error).__name__}: {error}"[:2000]
    path = Path(output_dir)
    if path.is_dir():
        (path / RESULT_FILE).write_text(json.dumps(record, indent=1) + "\n")
