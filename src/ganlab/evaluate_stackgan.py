"""``evaluate.py`` and ``sample.py`` for text-to-image models (``model=stackgan``), from the checkpoint alone.
``ganlab.evaluate.evaluate`` and ``ganlab.sample.sample`` hand such a checkpoint to the functions here.

    python evaluate.py ckpt_path=outputs/runs/<run>/checkpoints/last.ckpt   # caption accuracy, FID per stage, ...
    python sample.py ckpt_path=outputs/runs/<run>/checkpoints/last.ckpt     # samples.png: a row per caption
    python sample.py ckpt_path=... caption="a thick 7 slanted to the right" # caption.png: stage I over stage II
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor

from ganlab.data.captions import ATTRIBUTES, tokenize, unpack
from ganlab.metrics.caption_scores import CHANCE, attribute_agreement, retrieval_ranks, retrieval_summary
from ganlab.metrics.scores import GANScores, real_batches

RETRIEVAL_CANDIDATES = 32  # captions each image ranks
RETRIEVAL_GROUPS = 20  # groups of that many images and captions (fewer when num_samples is smaller)


def upsample(stage_1: Tensor) -> Tensor:
    """Stage-I images (B, C, 14, 14) at 28x28, bilinear: what stage II's FID is compared with."""
    return F.interpolate(stage_1, scale_factor=2, mode="bilinear", align_corners=False)


class CaptionTally:
    """Class accuracy (by the domain classifier) and attribute agreement of images drawn from captions."""

    def __init__(self, classifier, bins, grammar=None):
        self.classifier, self.bins = classifier, bins
        self.grammar = grammar  # given for held-out pairs: agreement on the attribute of each image's pair too
        self.correct, self.correct_stage_1, self.agree, self.count = 0, 0, torch.zeros(3), 0
        self.pair_agree = 0
        self.per_class = torch.zeros(2, 10)  # correct, asked

    def add(self, stage_1: Tensor, stage_2: Tensor, asked: Tensor) -> None:
        classes = asked[:, 0].cpu()
        predicted = self.classifier(stage_2).argmax(1).cpu()
        self.correct += int((predicted == classes).sum())
        self.correct_stage_1 += int((self.classifier(upsample(stage_1)).argmax(1).cpu() == classes).sum())
        agreement = attribute_agreement(stage_2, asked, self.bins)  # (B, 3)
        self.agree += agreement.float().sum(0)
        if self.grammar is not None:
            for row, agrees in zip(asked.tolist(), agreement.tolist()):
                said = [i for i, name in enumerate(ATTRIBUTES[1:]) if self.grammar.is_held_out(row, name)]
                self.pair_agree += all(agrees[i] for i in said)
        self.per_class[0] += torch.bincount(classes[predicted == classes], minlength=10).float()
        self.per_class[1] += torch.bincount(classes, minlength=10).float()
        self.count += len(classes)

    def results(self) -> dict[str, Any]:
        agreement = (self.agree / self.count).tolist()
        return {
            "class_accuracy": self.correct / self.count,
            "class_accuracy_stage_1": self.correct_stage_1 / self.count,
            "class_accuracy_per_class": (self.per_class[0] / self.per_class[1].clamp_min(1)).tolist(),
            **{f"{name}_agreement": value for name, value in zip(ATTRIBUTES[1:], agreement)},
            "images": self.count,
        } | ({"pair_agreement": self.pair_agree / self.count} if self.grammar is not None else {})


@torch.no_grad()
def evaluate_captions(
    cfg: DictConfig, gan, record: dict[str, Any], datamodule: L.LightningDataModule, device: torch.device
) -> dict[str, Any]:
    """``num_samples`` images from captions of uniformly drawn attributes (no held-out pair), both stages:
    class accuracy, attribute agreement, FID of stage II and of stage I upsampled against the ``reference``
    split; then the held-out pairs alone, and caption retrieval."""
    datamodule.setup("test")
    grammar, bins, batch_size = gan.grammar, datamodule.bins, cfg.metrics.batch_size
    scores = {stage: GANScores.for_data(datamodule, **cfg.metrics).to(device) for stage in ("stage_1", "stage_2")}
    for images in real_batches(getattr(datamodule, f"{cfg.reference}_dataloader")(), datamodule, device):
        for stage_scores in scores.values():
            stage_scores.update_real(images)
    classifier = scores["stage_2"].coverage.logits
    generator = torch.Generator().manual_seed(cfg.seed)
    seen, held_out = CaptionTally(classifier, bins), CaptionTally(classifier, bins, grammar)
    retrieval_pool = []  # (stage-II images, packed captions) of the first batches, for retrieval

    def draw(attributes: Tensor, tally: CaptionTally, held: bool) -> None:
        for batch in attributes.split(batch_size):
            captions = grammar.captions_for(batch, generator, held_out=held).to(device)
            stage_1, stage_2 = gan.generate_stages(captions=captions)
            tally.add(stage_1, stage_2, batch)
            if not held:
                scores["stage_2"].update_fake(stage_2)
                scores["stage_1"].update_fake(upsample(stage_1))
                retrieval_pool.append((stage_2, captions))

    draw(grammar.random_attributes(cfg.num_samples, generator), seen, held=False)
    if grammar.held_out:
        draw(grammar.random_attributes(max(100, cfg.num_samples // 10), generator, held_out=True), held_out, held=True)
    fid = {stage: stage_scores.compute() for stage, stage_scores in scores.items()}
    images = torch.cat([pool[0] for pool in retrieval_pool])
    captions = torch.cat([pool[1] for pool in retrieval_pool])
    groups = min(RETRIEVAL_GROUPS, len(images) // RETRIEVAL_CANDIDATES)
    with torch.no_grad():
        text = gan.encode(captions[: groups * RETRIEVAL_CANDIDATES])
        ranks = torch.cat(
            [
                retrieval_ranks(
                    lambda x, t: gan.discriminator_2(x, t)[0],
                    images[g * RETRIEVAL_CANDIDATES : (g + 1) * RETRIEVAL_CANDIDATES],
                    text[g * RETRIEVAL_CANDIDATES : (g + 1) * RETRIEVAL_CANDIDATES],
                )
                for g in range(groups)
            ]
        )
    results = {
        "checkpoint": str(cfg.ckpt_path),
        "global_step": record["global_step"],
        "dataset": datamodule.name,
        "reference": f"{cfg.reference} split ({scores['stage_2'].num_real} images)",
        "num_samples": cfg.num_samples,
        "seed": cfg.seed,
        "fid": fid["stage_2"]["fid"],
        "fid_stage_1_upsampled": fid["stage_1"]["fid"],
        "kid_mean": fid["stage_2"]["kid_mean"],
        "kid_mean_stage_1_upsampled": fid["stage_1"]["kid_mean"],
        "captions": seen.results(),
        "chance": {f"{name}_agreement": value for name, value in CHANCE.items()} | {"class_accuracy": 0.1},
        "held_out": {"pairs": list(datamodule.held_out), **held_out.results()} if grammar.held_out else None,
        "retrieval": retrieval_summary(ranks, RETRIEVAL_CANDIDATES) | {"images": len(ranks)},
        "attribute_bins": bins.to_dict(),
        "feature_extractor": scores["stage_2"].extractor,
    }
    out_path = Path(cfg.paths.output_dir) / "metrics.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=2) + "\n")
    print(format_caption_results(results))
    print(f"written to {out_path}")
    return results


def format_caption_results(results: dict[str, Any]) -> str:
    captions, chance, retrieval = results["captions"], results["chance"], results["retrieval"]
    per_class = " ".join(f"{accuracy:.2f}" for accuracy in captions["class_accuracy_per_class"])
    rows = [
        ("checkpoint", f"{results['checkpoint']} (step {results['global_step']})"),
        ("samples vs real", f"{results['num_samples']} captions vs {results['dataset']} {results['reference']}"),
        (
            "caption class accuracy",
            f"stage II {captions['class_accuracy']:.2%}, stage I {captions['class_accuracy_stage_1']:.2%} (chance 10%; per class: {per_class})",
        ),
        (
            "attribute agreement",
            " ".join(
                f"{name} {captions[f'{name}_agreement']:.2%} (chance {chance[f'{name}_agreement']:.0%})"
                for name in ("thickness", "slant", "size")
            ),
        ),
        ("FID", f"stage II {results['fid']:.3f}, stage I upsampled {results['fid_stage_1_upsampled']:.3f}"),
        (
            "KID",
            f"stage II {results['kid_mean']:.5f}, stage I upsampled {results['kid_mean_stage_1_upsampled']:.5f}",
        ),
        (
            "retrieval",
            f"recall@1 {retrieval['recall_at_1']:.2%} (chance {retrieval['chance_recall_at_1']:.2%}), recall@5 "
            f"{retrieval['recall_at_5']:.2%} (chance {retrieval['chance_recall_at_5']:.2%}), mean rank "
            f"{retrieval['mean_rank']:.2f} of {retrieval['candidates']} (chance {retrieval['chance_mean_rank']:.1f})",
        ),
    ]
    held = results["held_out"]
    if held:
        rows.append(
            (
                "held-out pairs",
                f"{', '.join(held['pairs'])}: class accuracy {held['class_accuracy']:.2%}, the pair's attribute "
                f"{held['pair_agreement']:.2%} ({held['images']} images)",
            )
        )
    extractor = results["feature_extractor"]
    rows.append(("classifier", f"{extractor['key']}, test accuracy {extractor['test_accuracy']:.2%}"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


# ---- sample.py ---------------------------------------------------------------------------------------------
def caption_rows(gan, captions: Tensor, per_caption: int) -> Tensor:
    """(2 * per_caption * N, C, 28, 28): for each caption, ``per_caption`` stage-I images (upsampled) then the
    stage-II images of the same noise."""
    z = gan.sample_latent(per_caption)
    rows = []
    for caption in captions:
        stage_1, stage_2 = gan.generate_stages(z, caption[None].expand(per_caption, -1))
        rows += [F.interpolate(stage_1, scale_factor=2, mode="nearest"), stage_2]
    return torch.cat(rows)


def sample_captions(cfg: DictConfig, gan, out_dir: Path) -> dict[str, Path]:
    """With ``caption=...``: ``caption.png``, ``num_samples`` images of that caption, in pairs of rows (stage I
    over stage II). Without: ``samples.png``, a row per caption (one per class, attributes drawn from ``seed``),
    stage I then stage II, and ``captions.txt`` naming each row's caption."""
    from ganlab.sample import save_grid

    grammar = gan.grammar
    caption = cfg.get("caption")
    if caption is not None:
        words = tokenize(str(caption))
        grammar.encode(words)  # CaptionError: empty, or a word outside the vocabulary
        unknown = torch.full((1, 4), -1)
        packed = grammar.pack([words], unknown, unknown).to(gan.device).expand(cfg.num_samples, -1)
        nrow = cfg.nrow or min(cfg.num_samples, 8)
        stage_1, stage_2 = gan.generate_stages(captions=packed)
        rows = []
        for low, high in zip(stage_1.split(nrow), stage_2.split(nrow)):
            rows += [F.interpolate(low, scale_factor=2, mode="nearest"), high]
        paths = {"caption": out_dir / "caption.png"}
        save_grid(torch.cat(rows), paths["caption"], nrow)
        (out_dir / "caption.txt").write_text(" ".join(words) + "\n")
    else:
        per_caption = cfg.nrow or 4
        num_captions = max(1, math.ceil(cfg.num_samples / per_caption))
        generator = torch.Generator().manual_seed(cfg.seed)
        attributes = grammar.random_attributes(num_captions, generator)
        attributes[:, 0] = torch.arange(num_captions) % grammar.num_classes
        packed = grammar.captions_for(attributes, generator).to(gan.device)
        paths = {"samples": out_dir / "samples.png", "captions": out_dir / "captions.txt"}
        save_grid(caption_rows(gan, packed, per_caption), paths["samples"], 2 * per_caption)
        lines = [f"{row + 1}. {grammar.decode(tokens)}" for row, tokens in enumerate(unpack(packed.cpu()).tokens)]
        paths["captions"].write_text("\n".join(lines) + "\n")
    for name, path in paths.items():
        print(f"{name}: {path}")
    return paths
