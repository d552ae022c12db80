"""The evaluation of text-to-image GANs (``model=stackgan``): images drawn from captions in both stages, scored
by class accuracy and attribute agreement with the caption, FID per stage, caption retrieval by the stage-II
discriminator and the held-out attribute-class pairs; grids of stage I over stage II per caption.

    python evaluate.py ckpt_path=outputs/runs/<run>/checkpoints/last.ckpt   # caption accuracy, FID per stage, ...
    python sample.py ckpt_path=outputs/runs/<run>/checkpoints/last.ckpt     # samples.png: a row per caption
    python sample.py ckpt_path=... caption="a thick 7 slanted to the right" # caption.png: stage I over stage II
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor

from ganlab.data.captions import ATTRIBUTES, tokenize, unpack
from ganlab.evaluation.base import Grid, rows_table
from ganlab.evaluation.samples import Samples
from ganlab.metrics.caption_scores import CHANCE, attribute_agreement, retrieval_ranks, retrieval_summary
from ganlab.metrics.scores import GANScores, real_batches

MANIFOLD_KEYS = ("precision", "recall", "density", "coverage")  # GANScores' k-NN manifold scores

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


class Captions(Samples):
    """A generator of images from captions, in two stages (``gan.generate_stages``). During training it is scored
    as a generator of noise (stage II of random captions: ``Samples``); ``evaluate.py`` scores it by its captions."""

    sample_options = ("caption",)

    @torch.no_grad()
    def evaluate(self, datamodule: L.LightningDataModule, cfg: DictConfig) -> dict[str, Any]:
        """``num_samples`` images from captions of uniformly drawn attributes (no held-out pair), both stages:
        class accuracy, attribute agreement, FID of stage II and of stage I upsampled against the ``reference``
        split; then the held-out pairs alone, and caption retrieval."""
        datamodule.setup("test")
        gan, device = self.gan, self.device
        grammar, bins, batch_size = gan.grammar, datamodule.bins, self.batch_size
        scores = {stage: GANScores.for_data(datamodule, **self.metrics).to(device) for stage in ("stage_1", "stage_2")}
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
            draw(
                grammar.random_attributes(max(100, cfg.num_samples // 10), generator, held_out=True),
                held_out,
                held=True,
            )
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
        return {
            "reference": f"{cfg.reference} split ({scores['stage_2'].num_real} images)",
            "num_samples": cfg.num_samples,
            "fid": fid["stage_2"]["fid"],
            "fid_stage_1_upsampled": fid["stage_1"]["fid"],
            "kid_mean": fid["stage_2"]["kid_mean"],
            "kid_mean_stage_1_upsampled": fid["stage_1"]["kid_mean"],
            **{key: fid["stage_2"][key] for key in MANIFOLD_KEYS},  # variety beside the accuracy: recall above all
            **{f"{key}_stage_1_upsampled": fid["stage_1"][key] for key in MANIFOLD_KEYS},
            "captions": seen.results(),
            "chance": {f"{name}_agreement": value for name, value in CHANCE.items()} | {"class_accuracy": 0.1},
            "held_out": {"pairs": list(datamodule.held_out), **held_out.results()} if grammar.held_out else None,
            "retrieval": retrieval_summary(ranks, RETRIEVAL_CANDIDATES) | {"images": len(ranks)},
            "attribute_bins": bins.to_dict(),
            "feature_extractor": scores["stage_2"].extractor,
        }

    def format(self, results: dict[str, Any]) -> str:
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
                "precision / recall",
                f"stage II {results['precision']:.3f} / {results['recall']:.3f}, stage I upsampled "
                f"{results['precision_stage_1_upsampled']:.3f} / {results['recall_stage_1_upsampled']:.3f}",
            ),
            (
                "density / coverage",
                f"stage II {results['density']:.3f} / {results['coverage']:.3f}, stage I upsampled "
                f"{results['density_stage_1_upsampled']:.3f} / {results['coverage_stage_1_upsampled']:.3f}",
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
        return rows_table(rows)

    # ---- grids -------------------------------------------------------------------------------------------
    def caption_rows(self, captions: Tensor, z: Tensor) -> Tensor:
        """(2 * B * N, C, 28, 28) for N captions and B latents: for each caption, the B stage-I images (shown at
        28x28) then the stage-II images of the same noise."""
        rows = []
        for caption in captions:
            stage_1, stage_2 = self.gan.generate_stages(z, caption[None].expand(len(z), -1))
            rows += [F.interpolate(stage_1, scale_factor=2, mode="nearest"), stage_2]
        return torch.cat(rows)

    def sample(self, datamodule: L.LightningDataModule, cfg: DictConfig, out_dir: Path) -> dict[str, Path]:
        """With ``caption=...``: ``caption.png``, ``num_samples`` images of that caption, in pairs of rows (stage I
        over stage II). Without: ``samples.png``, a row per caption (one per class, attributes drawn from
        ``seed``), stage I then stage II, and ``captions.txt`` naming each row's caption."""
        gan, grammar, caption = self.gan, self.gan.grammar, cfg.get("caption")
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
            (out_dir / "caption.txt").write_text(" ".join(words) + "\n")
            return {"caption": Grid(torch.cat(rows), nrow).save(out_dir / "caption.png")}
        per_caption = cfg.nrow or 4
        num_captions = max(1, math.ceil(cfg.num_samples / per_caption))
        generator = torch.Generator().manual_seed(cfg.seed)
        attributes = grammar.random_attributes(num_captions, generator)
        attributes[:, 0] = torch.arange(num_captions) % grammar.num_classes
        packed = grammar.captions_for(attributes, generator).to(gan.device)
        grid = Grid(self.caption_rows(packed, gan.sample_latent(per_caption)), 2 * per_caption)
        lines = [f"{row + 1}. {grammar.decode(tokens)}" for row, tokens in enumerate(unpack(packed.cpu()).tokens)]
        (out_dir / "captions.txt").write_text("\n".join(lines) + "\n")
        return {"samples": grid.save(out_dir / "samples.png"), "captions": out_dir / "captions.txt"}

    def sample_grid(self, datamodule: L.LightningDataModule, nrow: int = 8) -> Grid:
        """A row per fixed caption: stage I (upsampled to 28x28) then stage II, for the same fixed noise; the
        captions as the grid's text."""
        gan = self.gan
        lines = [f"{row}. {gan.grammar.decode(tokens)}" for row, tokens in enumerate(unpack(gan.fixed_captions).tokens)]
        text = "Each row: stage I (14x14, shown at 28x28), then stage II (28x28).\n\n" + "\n\n".join(lines)
        return Grid(self.caption_rows(gan.fixed_captions, gan.fixed_noise), 2 * len(gan.fixed_noise), text)
