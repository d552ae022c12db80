"""Captions of real digits and garments: attributes measured on each image, phrased in words, and tokenized.

Four attributes per image, measured here and nowhere else (training labels its images with them, evaluation
re-measures generated images with the same functions):

- ``class``: the dataset's label;
- ``thickness``: the ink mass (the sum of the intensities), thin / medium / thick by the terciles of its class;
- ``slant``: the shear of the image moments, mu11 / mu02 with y pointing up (a top leaning right is > 0),
  left / upright / right by the terciles of its class;
- ``size``: the area of the bounding box of the ink, small / large by the median of its class.

Thresholds per class, from the training split (``AttributeBins``): every (class, attribute value) pair is then
about equally common, so chance agreement is 1/3 for thickness and slant and 1/2 for size, whatever the class.

``CaptionGrammar`` phrases attributes in several ways (synonyms, word orders, optional attributes), so a text
encoder has to learn the words rather than template ids; its vocabulary is every word it can produce. Held-out
combinations (e.g. "thick 1") are never said in training captions: such an image's caption leaves that
attribute out, and evaluation asks for the combination to test generalization.

A batch carries its captions as one long tensor per image, ``pack``ed: token ids, length, the measured
attributes and the attributes the caption mentions (-1: not mentioned). One tensor chunks, moves and gathers
across DDP ranks like the labels of the other GANs.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

ATTRIBUTES = ("class", "thickness", "slant", "size")
VALUES = {
    "thickness": ("thin", "medium", "thick"),
    "slant": ("left", "upright", "right"),
    "size": ("small", "large"),
}
# Phrasings of each attribute value; several per value, so that the words, not the template, carry the meaning.
PHRASES = {
    "thickness": (("thin", "slim", "light"), ("medium", "regular", "normal"), ("thick", "bold", "heavy")),
    "slant": (
        ("slanted to the left", "leaning left", "tilted to the left"),
        ("upright", "standing straight", "not slanted"),
        ("slanted to the right", "leaning right", "tilted to the right"),
    ),
    "size": (("small", "little", "tiny"), ("large", "big", "wide")),
}
# Words for each class: MNIST's digits as figures and names, Fashion-MNIST's garments with a synonym.
CLASS_WORDS = {
    "mnist": tuple(
        (str(d), name) for d, name in enumerate("zero one two three four five six seven eight nine".split())
    ),
    "fashion_mnist": (
        ("t-shirt", "top"),
        ("trouser", "pants"),
        ("pullover", "sweater"),
        ("dress", "gown"),
        ("coat", "jacket"),
        ("sandal", "slipper"),
        ("shirt", "blouse"),
        ("sneaker", "trainer"),
        ("bag", "handbag"),
        ("ankle boot", "boot"),
    ),
}
CLASS_NOUNS = {"mnist": "digit", "fashion_mnist": "picture of a"}  # "a thick digit 7", "a picture of a thick bag"
ARTICLES = ("a", "the", "")
LINKS = ("that is", "which is", "is")
PAD = "<pad>"
MAX_TOKENS = 24  # room for any caption the grammar makes (at most 16 words) and a typed one


class CaptionError(ValueError):
    """A caption the model cannot read (empty, or a word outside its vocabulary): one line for the user."""


# ---- measuring ---------------------------------------------------------------------------------------------
def measure(images: Tensor, chunk: int = 8192) -> dict[str, Tensor]:
    """Raw attribute values of (N, H, W) images, uint8 0..255 or float in [0, 1] (ink bright on black).

    Returns ``ink`` (N,) the ink mass in pixels of full intensity, ``slant`` (N,) mu11 / mu02 with y up (dx per
    dy: > 0 leans right), ``size`` (N,) the bounding-box area in pixels of the ink above 25% intensity. In chunks
    of ``chunk`` images, so that 60,000 training images need no gigabytes of temporaries."""
    if len(images) > chunk:
        parts = [measure(part, chunk) for part in images.split(chunk)]
        return {name: torch.cat([part[name] for part in parts]) for name in parts[0]}
    x = images.float() / 255 if images.dtype == torch.uint8 else images.float().clamp(0, 1)  # (N, H, W)
    n, height, width = x.shape
    mass = x.sum((1, 2)).clamp_min(1e-6)  # (N,)
    rows = torch.arange(height, dtype=x.dtype)
    cols = torch.arange(width, dtype=x.dtype)
    up = (height - 1 - rows)[None, :, None]  # (1, H, 1): y up
    right = cols[None, None, :]  # (1, 1, W)
    cy = (x * up).sum((1, 2)) / mass  # (N,)
    cx = (x * right).sum((1, 2)) / mass
    dy, dx = up - cy[:, None, None], right - cx[:, None, None]  # (N, H, 1), (N, 1, W)
    mu11 = (x * dx * dy).sum((1, 2))
    mu02 = (x * dy * dy).sum((1, 2)).clamp_min(1e-6)
    ink = x > 0.25
    any_row, any_col = ink.any(2), ink.any(1)  # (N, H), (N, W)

    def extent(mask: Tensor) -> Tensor:  # (N, L) -> (N,): last - first True + 1, 0 when none
        idx = torch.arange(mask.shape[1])
        first = torch.where(mask, idx, mask.shape[1]).min(1).values
        last = torch.where(mask, idx, -1).max(1).values
        return (last - first + 1).clamp_min(0)

    size = (extent(any_row) * extent(any_col)).float()
    return {"ink": x.sum((1, 2)), "slant": mu11 / mu02, "size": size}


@dataclass
class AttributeBins:
    """Per-class thresholds: ``thickness`` and ``slant`` (num_classes, 2) terciles, ``size`` (num_classes, 1) median."""

    thickness: Tensor
    slant: Tensor
    size: Tensor

    @classmethod
    def fit(cls, images: Tensor, labels: Tensor, num_classes: int) -> AttributeBins:
        raw = measure(images)
        terciles, median = torch.tensor([1 / 3, 2 / 3]), torch.tensor([0.5])
        per_class = {name: [] for name in ("ink", "slant", "size")}
        for label in range(num_classes):
            rows = labels == label
            per_class["ink"].append(torch.quantile(raw["ink"][rows], terciles))
            per_class["slant"].append(torch.quantile(raw["slant"][rows], terciles))
            per_class["size"].append(torch.quantile(raw["size"][rows], median))
        return cls(*(torch.stack(per_class[name]) for name in ("ink", "slant", "size")))

    def label(self, images: Tensor, classes: Tensor) -> Tensor:
        """(N, 4) long: class, thickness, slant and size bins of ``images`` read as ``classes`` (N,)."""
        raw = measure(images)

        def bin_of(values: Tensor, edges: Tensor) -> Tensor:  # (N,), (N, E) -> (N,) in 0..E
            return (values[:, None] > edges).sum(1)

        classes = classes.long().cpu()
        return torch.stack(
            [
                classes,
                bin_of(raw["ink"], self.thickness[classes]),
                bin_of(raw["slant"], self.slant[classes]),
                bin_of(raw["size"], self.size[classes]),
            ],
            1,
        )

    def to_dict(self) -> dict[str, list[list[float]]]:
        return {"thickness": self.thickness.tolist(), "slant": self.slant.tolist(), "size": self.size.tolist()}


# ---- phrasing ----------------------------------------------------------------------------------------------
def tokenize(caption: str) -> list[str]:
    """Lower case, punctuation other than hyphens as spaces: "A thick 7, slanted." -> [a, thick, 7, slanted]."""
    return re.sub(r"[^\w\s-]", " ", caption.lower()).split()


class CaptionGrammar:
    """Captions for one dataset's classes (``CLASS_WORDS[classes]``), with ``held_out`` attribute-class pairs
    ("thick 1", "left 7": an attribute value, then a class word) never said in training captions."""

    def __init__(self, classes: str = "mnist", held_out: list[str] | tuple[str, ...] = ()):
        if classes not in CLASS_WORDS:
            raise ValueError(f"caption classes must be one of {sorted(CLASS_WORDS)}, got {classes!r}")
        self.classes = classes
        self.class_words = CLASS_WORDS[classes]
        self.num_classes = len(self.class_words)
        self.held_out = [self._parse_held_out(pair) for pair in held_out]  # [(class, attribute, value index)]
        words = {PAD}
        for phrase in [
            *ARTICLES,
            *LINKS,
            "and",
            "an",
            CLASS_NOUNS[classes],
            *(p for per_value in PHRASES.values() for options in per_value for p in options),
            *(w for options in self.class_words for w in options),
        ]:
            words.update(tokenize(phrase))
        self.vocabulary = [PAD, *sorted(words - {PAD})]
        self.index = {word: i for i, word in enumerate(self.vocabulary)}

    def _parse_held_out(self, pair: str) -> tuple[int, str, int]:
        value, _, class_word = pair.strip().partition(" ")
        attribute = next((name for name, values in VALUES.items() if value in values), None)
        label = next((c for c, options in enumerate(self.class_words) if class_word in options), None)
        if attribute is None or label is None:
            raise ValueError(
                f"held-out pair {pair!r} must be an attribute value ({', '.join(v for vs in VALUES.values() for v in vs)}) "
                f"then a class word (e.g. 'thick {self.class_words[1][0]}')"
            )
        return label, attribute, VALUES[attribute].index(value)

    def is_held_out(self, attributes: list[int] | tuple[int, ...], attribute: str) -> bool:
        """Whether ``attributes`` (class, thickness, slant, size) say a held-out pair through ``attribute``."""
        position = ATTRIBUTES.index(attribute)
        return any(
            label == attributes[0] and name == attribute and value == attributes[position]
            for label, name, value in self.held_out
        )

    def describe(self, attributes: list[int], rng: random.Random, drop: float = 0.0) -> tuple[list[str], list[int]]:
        """One caption of (class, thickness, slant, size): (words, attributes it mentions with -1 where left out).

        Each of thickness, slant and size is left out with probability ``drop``, and always when it would say a
        held-out pair."""
        mentioned = list(attributes)
        for position, name in enumerate(ATTRIBUTES[1:], 1):
            if self.is_held_out(attributes, name) or rng.random() < drop:
                mentioned[position] = -1
        adjectives = [
            rng.choice(PHRASES[name][mentioned[position]])
            for position, name in ((3, "size"), (1, "thickness"))
            if mentioned[position] >= 0
        ]
        slant = rng.choice(PHRASES["slant"][mentioned[2]]) if mentioned[2] >= 0 else None
        noun = rng.choice(self.class_words[attributes[0]])
        if rng.random() < 0.3:
            noun = f"{CLASS_NOUNS[self.classes]} {noun}"
        article = rng.choice(ARTICLES)
        if rng.random() < 0.5 or not (adjectives or slant):  # "a small thick 7 slanted to the left"
            words = " ".join(part for part in (*adjectives, noun, slant or "") if part)
        else:  # "a 7 that is small, thick and slanted to the left"
            said = [*adjectives, *([slant] if slant else [])]
            rng.shuffle(said)
            listed = said[0] if len(said) == 1 else ", ".join(said[:-1]) + " and " + said[-1]
            words = f"{noun} {rng.choice(LINKS)} {listed}"
        if article == "a" and words[0] in "aeiou":
            article = "an"
        return tokenize(f"{article} {words}"), mentioned

    # ---- ids -------------------------------------------------------------------------------------------
    def encode(self, caption: str | list[str]) -> list[int]:
        """Token ids of a caption; ``CaptionError`` naming the vocabulary for an empty one or an unknown word."""
        words = tokenize(caption) if isinstance(caption, str) else caption
        vocabulary = " ".join(self.vocabulary[1:])
        if not words:
            raise CaptionError(f"the caption is empty; write one with words of the vocabulary: {vocabulary}")
        unknown = [word for word in words if word not in self.index]
        if unknown:
            raise CaptionError(
                f"unknown word{'s' if len(unknown) > 1 else ''} {', '.join(repr(w) for w in unknown)} in the caption "
                f"{caption if isinstance(caption, str) else ' '.join(caption)!r}; the vocabulary: {vocabulary}"
            )
        if len(words) > MAX_TOKENS:
            raise CaptionError(f"the caption has {len(words)} words; at most {MAX_TOKENS} fit")
        return [self.index[word] for word in words]

    def decode(self, ids: Tensor) -> str:
        return " ".join(self.vocabulary[i] for i in ids.tolist() if i != 0)

    def pack(self, captions: list[list[str]], measured: Tensor, mentioned: Tensor) -> Tensor:
        """(N, MAX_TOKENS + 9) long: token ids (0-padded), length, measured attributes (4), mentioned ones (4)."""
        tokens = torch.zeros(len(captions), MAX_TOKENS, dtype=torch.long)
        lengths = torch.zeros(len(captions), 1, dtype=torch.long)
        for row, words in enumerate(captions):
            ids = self.encode(words)
            tokens[row, : len(ids)] = torch.tensor(ids)
            lengths[row] = len(ids)
        return torch.cat([tokens, lengths, measured.long().view(-1, 4), mentioned.long().view(-1, 4)], 1)

    def random_attributes(self, num: int, generator: torch.Generator, held_out: bool = False) -> Tensor:
        """(num, 4) attributes drawn uniformly: none of the held-out pairs (or, ``held_out=True``, only those)."""
        if held_out and not self.held_out:
            raise ValueError("no held-out pairs: set data.held_out")
        rows = []
        while len(rows) < num:
            if held_out:  # a held-out pair, the other attributes uniform
                label, name, value = self.held_out[int(torch.randint(len(self.held_out), (), generator=generator))]
            draw = [
                int(torch.randint(self.num_classes, (), generator=generator)),
                *(int(torch.randint(len(VALUES[n]), (), generator=generator)) for n in ("thickness", "slant", "size")),
            ]
            if held_out:
                draw[0], draw[ATTRIBUTES.index(name)] = label, value
            elif any(self.is_held_out(draw, n) for n in ATTRIBUTES[1:]):
                continue
            rows.append(draw)
        return torch.tensor(rows)

    def captions_for(self, attributes: Tensor, generator: torch.Generator, held_out: bool = False) -> Tensor:
        """Packed captions that mention every attribute of ``attributes`` (N, 4), phrased at random."""
        rng = random.Random(int(torch.randint(2**31, (), generator=generator)))
        captions = []
        for row in attributes.tolist():
            words, _ = self.describe(row, rng) if not held_out else self._describe_all(row, rng)
            captions.append(words)
        return self.pack(captions, attributes, attributes)

    def _describe_all(self, attributes: list[int], rng: random.Random) -> tuple[list[str], list[int]]:
        """A caption that says every attribute, held-out pairs included (evaluation only)."""
        held, self.held_out = self.held_out, []
        try:
            return self.describe(attributes, rng)
        finally:
            self.held_out = held


class Captions(NamedTuple):
    """A packed caption batch, unpacked: views into the one tensor."""

    tokens: Tensor  # (B, MAX_TOKENS) ids, 0-padded
    lengths: Tensor  # (B,)
    measured: Tensor  # (B, 4): class, thickness, slant, size measured on the real image
    mentioned: Tensor  # (B, 4): what the caption says, -1 where it says nothing


def unpack(packed: Tensor) -> Captions:
    return Captions(
        packed[:, :MAX_TOKENS],
        packed[:, MAX_TOKENS],
        packed[:, MAX_TOKENS + 1 : MAX_TOKENS + 5],
        packed[:, MAX_TOKENS + 5 : MAX_TOKENS + 9],
    )
