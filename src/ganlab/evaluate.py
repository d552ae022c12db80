"""``evaluate(cfg)``: score a trained generator from its checkpoint alone. The top-level ``evaluate.py`` calls it.

python evaluate.py ckpt_path=outputs/runs/<run>/checkpoints/last.ckpt num_samples=10000
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

from ganlab.checkpoints import current_target
from ganlab.metrics.conditional_accuracy import conditional_accuracy
from ganlab.metrics.scores import GANScores, real_batches
from ganlab.models.gan import GAN

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


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """FID, KID, precision/recall, density/coverage, classifier score and class coverage of ``num_samples`` images
    against the ``reference`` split."""
    if cfg.reference not in REFERENCE_SPLITS:
        raise ValueError(f"reference must be one of {REFERENCE_SPLITS}, got {cfg.reference!r}")
    L.seed_everything(cfg.seed, verbose=False)
    device = pick_device(cfg.device)
    gan, record = load_generator(cfg.ckpt_path, device)
    datamodule = datamodule_for(cfg, record["data"])
    if getattr(gan, "translates", False):  # model=cyclegan: translations of the real images, not samples
        from ganlab.evaluate_translation import evaluate_translation

        return evaluate_translation(cfg, gan, record, datamodule, device)
    if getattr(gan, "draws_from_captions", False):  # model=stackgan: images from captions, both stages
        from ganlab.evaluate_stackgan import evaluate_captions

        return evaluate_captions(cfg, gan, record, datamodule, device)
    scores = GANScores.for_data(datamodule, **cfg.metrics).to(device)
    loader = getattr(datamodule, f"{cfg.reference}_dataloader")()
    scores.add_real(real_batches(loader, datamodule, device))
    scores.add_generated(gan.generate, cfg.num_samples, cfg.metrics.batch_size)
    results = {
        "checkpoint": str(cfg.ckpt_path),
        "global_step": record["global_step"],
        "dataset": datamodule.name,
        "reference": f"{cfg.reference} split ({scores.num_real} images)",
        "num_samples": cfg.num_samples,
        "seed": cfg.seed,
        **scores.compute(),
        "feature_extractor": scores.extractor,
    }
    if gan.conditional:  # class-conditional (cgan, acgan): does each image show the class it was asked for?
        per_class = max(1, cfg.num_samples // gan.num_classes)
        results |= conditional_accuracy(
            lambda labels: gan.generate(labels=labels),
            scores.coverage.logits,
            gan.num_classes,
            per_class,
            cfg.metrics.batch_size,
        )
    out_path = Path(cfg.paths.output_dir) / "metrics.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=2) + "\n")
    print(format_results(results))
    print(f"written to {out_path}")
    return results


def format_results(results: dict[str, Any]) -> str:
    shares = " ".join(f"{share:.2f}" for share in results["class_shares"])
    extractor = results["feature_extractor"]
    rows = [
        ("checkpoint", f"{results['checkpoint']} (step {results['global_step']})"),
        ("samples vs real", f"{results['num_samples']} generated vs {results['dataset']} {results['reference']}"),
        ("FID", f"{results['fid']:.3f}"),
        ("KID", f"{results['kid_mean']:.5f} +- {results['kid_std']:.5f}"),
        (
            "precision / recall",
            f"{results['precision']:.3f} / {results['recall']:.3f} (fidelity / diversity: samples on the real manifold / real images on theirs)",
        ),
        (
            "density / coverage",
            f"{results['density']:.3f} / {results['coverage']:.3f} (real balls per sample / k, share of real balls holding a sample)",
        ),
        (
            "classifier score",
            f"{results['classifier_score']:.3f} +- {results['classifier_score_std']:.3f} (Inception-Score analogue, max {len(results['class_shares'])})",
        ),
        ("class shares", shares),
        (
            "class coverage",
            f"KL from uniform {results['coverage_kl']:.4f}, {results['classes_covered']}/{len(results['class_shares'])} classes covered",
        ),
        ("features", f"{extractor['fid_kid_features']}; classifier test accuracy {extractor['test_accuracy']:.2%}"),
    ]
    if "conditional_accuracy" in results:
        per_class = " ".join(f"{accuracy:.2f}" for accuracy in results["conditional_accuracy_per_class"])
        rows.insert(3, ("conditional accuracy", f"{results['conditional_accuracy']:.2%} (per class: {per_class})"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
