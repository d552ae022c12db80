"""``evaluate(cfg)``: score a trained GAN from its checkpoint alone. The top-level ``evaluate.py`` calls it.

python evaluate.py ckpt_path=outputs/runs/<run>/checkpoints/last.ckpt num_samples=10000

What is scored is the family's own evaluation (``GAN.evaluator_class``, ``ganlab.evaluation``); this module
loads, asks it, and writes metrics.json.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from ganlab.models.gan import GAN
from ganlab.run.checkpoints import current_target

log = logging.getLogger(__name__)

REFERENCE_SPLITS = ("test", "val", "train")


def pick_device(name: str) -> torch.device:
    return torch.device("cuda" if name == "auto" and torch.cuda.is_available() else ("cpu" if name == "auto" else name))


def load_generator(ckpt_path: str, device: torch.device) -> tuple[GAN, dict[str, Any]]:
    """The GAN rebuilt from its checkpoint, and the checkpoint's record of its data (None when it has none)."""
    path = Path(ckpt_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"ckpt_path={ckpt_path} is not a file; pass a checkpoint, e.g. ckpt_path=outputs/runs/<run>/checkpoints/last.ckpt"
        )
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    gan = GAN.load_from_checkpoint(path, map_location=device).eval()
    return gan, {"data": checkpoint.get("data"), "global_step": checkpoint.get("global_step")}


def datamodule_for(cfg: DictConfig, data_record: dict[str, Any] | None) -> L.LightningDataModule:
    """``data=...`` when given, else the data the checkpoint records having trained on."""
    if cfg.get("data") is not None:
        return instantiate(cfg.data)
    if data_record is None:
        raise ValueError(f"{cfg.ckpt_path} does not record its data; name it: data=mnist or data=fashion_mnist")
    return instantiate(data_record | {"_target_": current_target(data_record["_target_"])})


def write_json(results: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """The family's scores of ``num_samples`` images (or translations) against the ``reference`` split, printed
    and written to ``metrics.json`` in the run dir."""
    if cfg.reference not in REFERENCE_SPLITS:
        raise ValueError(f"reference must be one of {REFERENCE_SPLITS}, got {cfg.reference!r}")
    L.seed_everything(cfg.seed, verbose=False)
    gan, record = load_generator(cfg.ckpt_path, pick_device(cfg.device))
    datamodule = datamodule_for(cfg, record["data"])
    evaluator = gan.evaluator(cfg.metrics)
    results = {
        "checkpoint": str(cfg.ckpt_path),
        "global_step": record["global_step"],
        "dataset": datamodule.name,
        "seed": cfg.seed,
        **evaluator.evaluate(datamodule, cfg),
    }
    path = write_json(results, Path(cfg.paths.output_dir) / "metrics.json")
    print(evaluator.format(results))
    print(f"written to {path}")
    return results
