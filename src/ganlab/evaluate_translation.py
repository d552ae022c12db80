"""``evaluate.py`` and ``sample.py`` for translators (``model=cyclegan``): scores and grids of translations from
the checkpoint alone. ``ganlab.evaluate.evaluate`` and ``ganlab.sample.sample`` hand a translator's checkpoint
to the functions here.

    python evaluate.py ckpt_path=outputs/runs/<run>/checkpoints/last.ckpt     # label preservation, FID, cycle error
    python sample.py ckpt_path=outputs/runs/<run>/checkpoints/last.ckpt       # translation_ab.png, translation_ba.png
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig
from torch import Tensor

from ganlab.metrics.translation import TranslationScores


def labelled_batches(loader, datamodule: L.LightningDataModule, device: torch.device):
    """(A images, A labels, B images, B labels) on ``device``, images in [-1, 1]."""
    for batch in loader:
        yield datamodule.on_after_batch_transfer(tuple(part.to(device) for part in batch), 0)


def evaluate_translation(
    cfg: DictConfig, gan, record: dict[str, Any], datamodule: L.LightningDataModule, device: torch.device
) -> dict[str, Any]:
    """Every image of the ``reference`` split of both domains translated both ways, and scored (``metrics/translation.py``)."""
    datamodule.setup("test")
    scores = TranslationScores.for_data(datamodule, **cfg.metrics).to(device)
    loader = lambda: getattr(datamodule, f"{cfg.reference}_dataloader")()  # noqa: E731
    scores.add_real(labelled_batches(loader(), datamodule, device))
    scores.add_translated(
        lambda a: gan.translate(a, "ab"),
        lambda b: gan.translate(b, "ba"),
        labelled_batches(loader(), datamodule, device),
    )
    num = scores.num_real
    results = {
        "checkpoint": str(cfg.ckpt_path),
        "global_step": record["global_step"],
        "dataset": datamodule.name,
        "reference": f"{cfg.reference} splits ({num['ba']} {datamodule.domain_a.name} images as A, {num['ab']} {datamodule.domain_b.name} images as B)",
        **scores.compute(),
        "feature_extractor": scores.extractors,
    }
    results["fid"] = results["fid_ab"]  # what evaluate.py returns (and a sweep would minimize): FID of A -> B
    out_path = Path(cfg.paths.output_dir) / "metrics.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=2) + "\n")
    print(format_translation_results(results, datamodule.domain_a.name, datamodule.domain_b.name))
    print(f"written to {out_path}")
    return results


def format_translation_results(results: dict[str, Any], name_a: str, name_b: str) -> str:
    extractors = results["feature_extractor"]
    rows = [
        ("checkpoint", f"{results['checkpoint']} (step {results['global_step']})"),
        ("images", f"every image of the {results['reference']}"),
        (
            f"label preservation {name_a} -> {name_b}",
            f"{results['label_preservation_ab']:.2%} (untranslated: {results['baseline_label_preservation_ab']:.2%}), by the {name_b} classifier",
        ),
        (
            f"label preservation {name_b} -> {name_a}",
            f"{results['label_preservation_ba']:.2%} (untranslated: {results['baseline_label_preservation_ba']:.2%}), by the {name_a} classifier",
        ),
        (
            f"FID {name_a} -> {name_b}",
            f"{results['fid_ab']:.3f} (untranslated: {results['baseline_fid_ab']:.3f}), against real {name_b}",
        ),
        (
            f"FID {name_b} -> {name_a}",
            f"{results['fid_ba']:.3f} (untranslated: {results['baseline_fid_ba']:.3f}), against real {name_a}",
        ),
        (
            "cycle error",
            f"A -> B -> A {results['cycle_error_a']:.4f}, B -> A -> B {results['cycle_error_b']:.4f} (mean |x - x'| on [-1, 1])",
        ),
        (
            "classifiers",
            f"{extractors['a']['key']} ({extractors['a']['test_accuracy']:.2%} test), {extractors['b']['key']} ({extractors['b']['test_accuracy']:.2%} test)",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def translation_rows(gan, sources: Tensor, direction: str, nrow: int) -> Tensor:
    """(3 * N, C, H, W): for each group of ``nrow`` sources, a row of them, their translations, their reconstructions."""
    back = direction[::-1]
    rows = []
    for group in sources.split(nrow):
        translated = gan.translate(group, direction)
        rows += [group.to(gan.device), translated, gan.translate(translated, back)]
    return torch.cat(rows)


def sample_translations(cfg: DictConfig, gan, datamodule: L.LightningDataModule, out_dir: Path) -> dict[str, Path]:
    """``translation_ab.png`` and ``translation_ba.png``: the first ``num_samples`` test images of each domain, in
    groups of three rows (source, translated, reconstructed)."""
    from ganlab.sample import save_grid

    datamodule.setup("test")
    nrow = cfg.nrow or math.ceil(math.sqrt(cfg.num_samples))
    paths = {}
    for direction, domain in (("ab", datamodule.domain_a), ("ba", datamodule.domain_b)):
        images = domain.test_set.tensors[0][: cfg.num_samples]
        sources = datamodule.on_after_batch_transfer((images,), 0)[0]
        paths[f"translation_{direction}"] = out_dir / f"translation_{direction}.png"
        save_grid(translation_rows(gan, sources, direction, nrow), paths[f"translation_{direction}"], nrow)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return paths
