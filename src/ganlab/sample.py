"""``sample(cfg)``: image grids from a trained generator, rebuilt from its checkpoint alone. ``sample.py`` calls it.

python sample.py ckpt_path=outputs/runs/<run>/checkpoints/last.ckpt num_samples=64
"""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig, ListConfig
from torch import Tensor
from torchvision.utils import make_grid, save_image

from ganlab.evaluate import datamodule_for, load_generator, pick_device


def slerp(start: Tensor, end: Tensor, weights: Tensor) -> Tensor:
    """Spherical interpolation, (R, D) x (R, D) x (S,) -> (R, S, D): the path a Gaussian prior's samples lie along
    (a straight line through the origin region would pass through unusually short latents)."""
    cos = torch.nn.functional.cosine_similarity(start, end, dim=1).clamp(-1 + 1e-7, 1 - 1e-7)  # (R,)
    omega = torch.acos(cos)[:, None, None]  # (R, 1, 1)
    t = weights[None, :, None]  # (1, S, 1)
    return (torch.sin((1 - t) * omega) * start[:, None] + torch.sin(t * omega) * end[:, None]) / torch.sin(omega)


def interpolation_latents(gan, rows: int, steps: int) -> Tensor:
    """(rows * steps, latent_dim): each row walks from one random latent to another."""
    start, end = gan.sample_latent(rows), gan.sample_latent(rows)  # (R, D)
    weights = torch.linspace(0, 1, steps, device=start.device)  # (S,)
    if gan.hparams.prior == "normal":
        path = slerp(start, end, weights)
    else:  # uniform prior: the box is convex, a straight line stays inside it
        path = start[:, None] + weights[None, :, None] * (end - start)[:, None]
    return path.reshape(rows * steps, -1)


def class_labels(gan, labels, num_samples: int) -> Tensor | None:
    """Classes to draw for a class-conditional model (num_samples,): the requested ones in turn, or by default every
    class in turn, one row per class. None for an unconditional model."""
    if not gan.conditional:
        if labels is not None:
            raise ValueError(
                f"labels={labels} needs a class-conditional checkpoint (model=cgan or model=acgan); drop labels= for this {type(gan).__name__}"
            )
        return None
    if labels is None:
        per_class = math.ceil(num_samples / gan.num_classes)
        return torch.arange(gan.num_classes).repeat_interleave(per_class)[:num_samples]
    requested = torch.tensor(list(labels) if isinstance(labels, (list, tuple, ListConfig)) else [labels])  # (R,)
    return requested.repeat(math.ceil(num_samples / len(requested)))[:num_samples]


def save_grid(images: Tensor, path: Path, nrow: int) -> None:
    grid = make_grid(images, nrow=nrow, normalize=True, value_range=(-1, 1), padding=2)  # (3, H', W') in [0, 1]
    save_image(grid, path)


def sample(cfg: DictConfig) -> dict[str, Path]:
    """``samples.png`` (num_samples images) and ``interpolation.png`` (rows x steps) in the run dir."""
    L.seed_everything(cfg.seed, verbose=False)
    gan, record = load_generator(cfg.ckpt_path, pick_device(cfg.device))
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if getattr(gan, "translates", False):  # model=cyclegan: rows of source, translated and reconstructed images
        from ganlab.evaluate_translation import sample_translations

        return sample_translations(cfg, gan, datamodule_for(cfg, record["data"]), out_dir)
    if getattr(gan, "draws_from_captions", False):  # model=stackgan: stage I and stage II from captions
        from ganlab.evaluate_stackgan import sample_captions

        return sample_captions(cfg, gan, out_dir)
    if cfg.get("caption") is not None:
        raise ValueError(f"caption= needs a text-to-image checkpoint (model=stackgan), not {type(gan).__name__}")
    paths = {"samples": out_dir / "samples.png", "interpolation": out_dir / "interpolation.png"}
    labels = class_labels(gan, cfg.get("labels"), cfg.num_samples)
    rows, steps = cfg.interpolation.rows, cfg.interpolation.steps
    latents = interpolation_latents(gan, rows, steps)
    if labels is None:
        nrow = cfg.nrow or math.ceil(math.sqrt(cfg.num_samples))
        save_grid(gan.generate(cfg.num_samples), paths["samples"], nrow)
        save_grid(gan.generate(z=latents), paths["interpolation"], steps)
    else:  # one row per class by default; each interpolation row keeps one class while z moves
        nrow = cfg.nrow or (
            math.ceil(cfg.num_samples / gan.num_classes)
            if cfg.get("labels") is None
            else math.ceil(math.sqrt(cfg.num_samples))
        )
        save_grid(gan.generate(labels=labels), paths["samples"], nrow)
        row_labels = (
            class_labels(gan, cfg.get("labels"), rows)
            if cfg.get("labels") is not None
            else torch.arange(rows) % gan.num_classes
        )
        save_grid(gan.generate(z=latents, labels=row_labels.repeat_interleave(steps)), paths["interpolation"], steps)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return paths
