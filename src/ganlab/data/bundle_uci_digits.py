"""Convert the UCI handwritten digits that scikit-learn ships into the bundled 28x28 IDX copy (``data=uci_digits``).

Run once (the output is committed under ``src/ganlab/data/uci_digits/``, with its PROVENANCE.md)::

    pip install scikit-learn==1.9.1
    python -m ganlab.data.bundle_uci_digits

scikit-learn's wheel carries ``sklearn/datasets/data/digits.csv.gz``: the 1,797 digits of the test part of
UCI's "Optical Recognition of Handwritten Digits" (Alpaydin & Kaynak 1998, CC BY 4.0), each an 8x8 grid of
counts 0..16 (on-pixels of a 4x4 block of a 32x32 bitmap). They are resized the way MNIST itself was framed:
the digit fills a 20x20 box (bilinear upsampling, counts scaled to 0..255) centred in a 28x28 image with a
4-pixel black border. A fixed shuffle splits them into 1,437 training and 360 test digits.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganlab.data.idx import write_idx

BUNDLE_DIR = Path(__file__).parent / "uci_digits"
TEST_SIZE = 360  # 20%
SHUFFLE_SEED = 0
BOX, SIZE = 20, 28  # MNIST's framing: the digit in a 20x20 box, centred in 28x28


def to_mnist_frame(counts: np.ndarray) -> np.ndarray:
    """(N, 8, 8) counts 0..16 -> (N, 28, 28) uint8: bilinear to 20x20, scaled to 0..255, padded by 4 on each side."""
    images = torch.from_numpy(counts.astype(np.float32) / 16.0).unsqueeze(1)  # (N, 1, 8, 8) in [0, 1]
    boxed = F.interpolate(images, size=(BOX, BOX), mode="bilinear", align_corners=False)  # (N, 1, 20, 20)
    pad = (SIZE - BOX) // 2
    framed = F.pad(boxed, (pad, pad, pad, pad))  # (N, 1, 28, 28)
    return (framed.squeeze(1) * 255).round().clamp(0, 255).to(torch.uint8).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=BUNDLE_DIR)
    args = parser.parse_args()
    from sklearn.datasets import load_digits  # only this script needs scikit-learn

    digits = load_digits()
    counts, labels = digits.images.astype(np.uint8), digits.target.astype(np.uint8)  # (1797, 8, 8), (1797,)
    order = np.random.default_rng(SHUFFLE_SEED).permutation(len(counts))
    images, labels = to_mnist_frame(counts[order]), labels[order]
    args.out.mkdir(parents=True, exist_ok=True)
    for split, rows in {"train": slice(TEST_SIZE, None), "t10k": slice(None, TEST_SIZE)}.items():
        write_idx(args.out / f"{split}-images-idx3-ubyte.gz", images[rows])
        write_idx(args.out / f"{split}-labels-idx1-ubyte.gz", labels[rows])
    print(f"wrote {len(images) - TEST_SIZE} training and {TEST_SIZE} test digits to {args.out}")


if __name__ == "__main__":
    main()
