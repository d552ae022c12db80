"""Captions (data/captions.py, data/captioned_digits.py): attributes measured on constructed images, phrasings
that vary and never say a held-out pair, vocabulary errors, and captions drawn per image and epoch from the
seed alone (so resume is exact)."""

from __future__ import annotations

import random

import pytest
import torch

from ganlab.data.captioned_digits import CaptionedBatches, CaptionedDataModule
from ganlab.data.captions import (
    PHRASES,
    AttributeBins,
    CaptionError,
    CaptionGrammar,
    measure,
    tokenize,
    unpack,
)
from ganlab.data.mnist import MNISTDataModule
from ganlab.metrics.caption_scores import attribute_agreement, retrieval_ranks


def canvas() -> torch.Tensor:
    return torch.zeros(28, 28, dtype=torch.uint8)


def stroke(slope: float, width: int, top: int = 4, bottom: int = 24) -> torch.Tensor:
    """A line from the bottom to the top of the image, ``slope`` pixels right per pixel up, ``width`` wide."""
    image = canvas()
    for row in range(top, bottom):
        centre = 14 + round(slope * ((bottom + top) / 2 - row))
        image[row, centre - width // 2 : centre - width // 2 + width] = 255
    return image


def test_thickness_slant_and_size_are_measured_on_constructed_strokes():
    thin, thick = stroke(0, 2), stroke(0, 6)
    right, left, upright = stroke(0.5, 3), stroke(-0.5, 3), stroke(0, 3)
    small, large = stroke(0, 3, top=10, bottom=18), stroke(0, 3, top=2, bottom=26)
    raw = measure(torch.stack([thin, thick, right, left, upright, small, large]))
    assert raw["ink"][1] == pytest.approx(3 * raw["ink"][0])  # three times the width, three times the ink
    assert raw["slant"][2] == pytest.approx(0.5, abs=0.05) and raw["slant"][3] == pytest.approx(-0.5, abs=0.05)
    assert raw["slant"][4] == pytest.approx(0, abs=1e-4)
    assert raw["size"][5] == 8 * 3 and raw["size"][6] == 24 * 3  # bounding boxes
    # float images in [0, 1] read the same as uint8 ones
    assert measure(thick[None].float() / 255)["ink"].item() == pytest.approx(raw["ink"][1].item())


def test_bins_are_per_class_terciles_and_label_new_images():
    images = torch.stack([stroke(0, w) for w in (1, 2, 3, 4, 5, 6)] * 2)  # class 0 and class 1 alike
    labels = torch.tensor([0] * 6 + [1] * 6)
    bins = AttributeBins.fit(images, labels, num_classes=2)
    thin, thick = stroke(0, 1), stroke(0, 6)
    labelled = bins.label(torch.stack([thin, thick]), torch.tensor([1, 0]))
    assert labelled[:, 0].tolist() == [1, 0] and labelled[:, 1].tolist() == [0, 2]  # class, thickness bin
    asked = torch.tensor([[1, 0, 1, 0], [0, 0, 1, 0]])  # the thick one asked to be thin
    agreement = attribute_agreement(torch.stack([thin, thick])[:, None].float() / 127.5 - 1, asked, bins)
    assert agreement[:, 0].tolist() == [True, False]


def test_unknown_words_and_empty_captions_fail_in_one_line_naming_the_vocabulary():
    grammar = CaptionGrammar("mnist")
    assert grammar.encode("A thick 7, slanted to the right.") == grammar.encode("a thick 7 slanted to the right")
    for caption, what in [("a purple 7", "unknown word 'purple'"), ("", "the caption is empty"), ("  ", "empty")]:
        with pytest.raises(CaptionError, match=what) as err:
            grammar.encode(caption)
        message = str(err.value)
        assert "\n" not in message and "the vocabulary: 0 1 2" in message and "slanted" in message


def test_vocabulary_covers_every_phrasing_and_phrasings_vary():
    for classes in ("mnist", "fashion_mnist"):
        grammar = CaptionGrammar(classes)
        rng = random.Random(0)
        for _ in range(2000):
            attributes = [rng.randrange(10), rng.randrange(3), rng.randrange(3), rng.randrange(2)]
            words, mentioned = grammar.describe(attributes, rng, drop=0.15)
            grammar.encode(words)  # every word is in the vocabulary
            assert mentioned[0] == attributes[0] and all(m in (-1, a) for m, a in zip(mentioned, attributes))
        captions = {" ".join(grammar.describe([7, 2, 2, 1], rng)[0]) for _ in range(50)}
        assert len(captions) > 20  # one set of attributes, many phrasings
    assert grammar.vocabulary[0] == "<pad>" and len(set(grammar.vocabulary)) == len(grammar.vocabulary)


def test_held_out_pairs_are_never_said_in_training_captions():
    grammar = CaptionGrammar("mnist", ["thick 1", "left 7"])
    thick_words = {w for phrase in PHRASES["thickness"][2] for w in tokenize(phrase)}
    rng = random.Random(1)
    for _ in range(300):
        words, mentioned = grammar.describe([1, 2, rng.randrange(3), 1], rng)
        assert mentioned[1] == -1 and not thick_words & set(words)
        words, mentioned = grammar.describe([7, 1, 0, 0], rng)
        assert mentioned[2] == -1 and "left" not in words
    generator = torch.Generator().manual_seed(0)
    drawn = grammar.random_attributes(500, generator)
    assert not ((drawn[:, 0] == 1) & (drawn[:, 1] == 2)).any() and not ((drawn[:, 0] == 7) & (drawn[:, 2] == 0)).any()
    asked = grammar.random_attributes(100, generator, held_out=True)
    assert (((asked[:, 0] == 1) & (asked[:, 1] == 2)) | ((asked[:, 0] == 7) & (asked[:, 2] == 0))).all()
    with pytest.raises(ValueError, match="held-out pair 'purple 1'"):
        CaptionGrammar("mnist", ["purple 1"])


def test_captions_are_drawn_per_image_and_epoch_from_the_seed_and_resume():
    sampler = CaptionedBatches(100, 10, shuffle=True, seed=3, drop_last=True)
    sampler.set_epoch(1)
    uninterrupted = list(sampler)
    assert all(batch.shape == (2, 10) for batch in uninterrupted)
    iterator = iter(sampler)
    first = [next(iterator) for _ in range(4)]
    resumed = CaptionedBatches(100, 10, shuffle=True, seed=3, drop_last=True)
    resumed.load_state_dict(sampler.state_dict())
    resumed.set_epoch(1)
    assert [b.tolist() for b in first + list(resumed)] == [b.tolist() for b in uninterrupted]
    sampler.set_epoch(2)
    seeds = {int(r): int(s) for batch in uninterrupted for r, s in batch.T}
    later = {int(r): int(s) for batch in sampler for r, s in batch.T}
    assert all(seeds[row] != later[row] for row in seeds.keys() & later.keys())  # a new caption every epoch


def test_datamodule_serves_images_with_packed_captions_of_their_measured_attributes():
    data = CaptionedDataModule(
        MNISTDataModule(root="nowhere", download=False, seed=0), held_out=["thick 1"], batch_size=16, seed=0
    )
    data.setup()
    assert data.name == "MNIST" and data.source is not None  # the domain classifier finds MNIST's files
    images, packed = data.on_after_batch_transfer(next(iter(data.train_dataloader())), 0)
    captions = unpack(packed)
    assert images.shape == (16, 1, 28, 28) and packed.shape == (16, 33)
    assert torch.equal(
        captions.measured, data.bins.label(((images[:, 0] + 1) * 127.5).round().byte(), captions.measured[:, 0])
    )
    assert ((captions.mentioned == -1) | (captions.mentioned == captions.measured)).all()
    assert (captions.lengths == (captions.tokens > 0).sum(1)).all()
    # Terciles per class: each thickness bin holds about a third of every class's training digits.
    attributes = data.train_set.attributes
    for label in range(10):
        shares = torch.bincount(attributes[attributes[:, 0] == label, 1], minlength=3).float()
        assert (shares / shares.sum() - 1 / 3).abs().max() < 0.02
    assert data.record()["images"]["_target_"] == "ganlab.data.mnist.MNISTDataModule"


def test_retrieval_ranks_the_own_caption():
    scores = lambda images, text: -(images - text).abs().sum(1)  # noqa: E731  (closest caption scores highest)
    items = torch.arange(4.0)[:, None]
    assert retrieval_ranks(scores, items, items).tolist() == [1, 1, 1, 1]
    assert retrieval_ranks(scores, items, items.flip(0)).tolist() == [4, 3, 3, 4]  # ties count against
