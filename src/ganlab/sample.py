"""``sample(cfg)``: image grids from a trained GAN, rebuilt from its checkpoint alone. ``sample.py`` calls it.

python sample.py ckpt_path=outputs/runs/<run>/checkpoints/last.ckpt num_samples=64

What is drawn is the family's own (``GAN.evaluator_class``, ``ganlab.evaluation``): samples and interpolations,
one row per class, translations, or images from captions.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
from omegaconf import DictConfig

from ganlab.evaluate import datamodule_for, load_generator, pick_device

#: Options of sample.py that only some families take, with the models that take them (for the error message).
FAMILY_OPTIONS = {
    "labels": "a class-conditional checkpoint (model=cgan or model=acgan)",
    "caption": "a text-to-image checkpoint (model=stackgan)",
}


def sample(cfg: DictConfig) -> dict[str, Path]:
    """The family's grids (``samples.png`` and ``interpolation.png`` for a generator of noise) in the run dir."""
    L.seed_everything(cfg.seed, verbose=False)
    gan, record = load_generator(cfg.ckpt_path, pick_device(cfg.device))
    evaluator = gan.evaluator()
    for option, who in FAMILY_OPTIONS.items():
        if cfg.get(option) is not None and option not in evaluator.sample_options:
            raise ValueError(
                f"{option}={cfg.get(option)} needs {who}; drop {option}= for this {type(gan).__name__} checkpoint"
            )
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = evaluator.sample(datamodule_for(cfg, record["data"]), cfg, out_dir)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return paths
