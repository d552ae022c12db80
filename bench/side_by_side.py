"""One image of sample grids side by side, each titled: the reference loop's G and the project's checkpoints.

    python bench/side_by_side.py --out docs/mnist_side_by_side.png \
        "reference=outputs/bench/quality/mnist/reference_DCGAN_n3000_s0" \
        "default=outputs/bench/quality/mnist/default_n3000_s0/checkpoints/last.ckpt"

A path ending in ``.ckpt`` is a project checkpoint (its G in eval mode, as ``sample.py`` draws it); a folder is a
``bench/reference_dcgan.py`` run saved with ``--save-dir`` (its ``generator.pt``). Every grid draws 64 samples
after ``seed_everything(0)``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import lightning as L
import torch
from PIL import Image, ImageDraw
from torchvision.utils import make_grid

from ganlab.evaluate import load_generator

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference_dcgan  # noqa: E402  (bench/ on the path first)

NUM = 64
TITLE_HEIGHT = 14


@torch.no_grad()
def samples(path: Path) -> torch.Tensor:
    """(64, C, H, W) in [-1, 1] from a checkpoint or a saved reference run."""
    if path.suffix == ".ckpt":
        gan, _ = load_generator(str(path), torch.device("cpu"))
        L.seed_everything(0, verbose=False)
        return gan.generate(NUM)
    generator = reference_dcgan.Generator()
    generator.load_state_dict(torch.load(path / "generator.pt", map_location="cpu"))
    generator.eval()
    L.seed_everything(0, verbose=False)
    return generator(torch.randn(NUM, 100))


def titled_grid(title: str, images: torch.Tensor) -> Image.Image:
    grid = make_grid(images, nrow=8, normalize=True, value_range=(-1, 1), padding=2)  # (3, H', W') in [0, 1]
    picture = Image.fromarray(grid.mul(255).round().byte().permute(1, 2, 0).numpy())
    canvas = Image.new("RGB", (picture.width, picture.height + TITLE_HEIGHT), "white")
    canvas.paste(picture, (0, TITLE_HEIGHT))
    ImageDraw.Draw(canvas).text((2, 1), title, fill="black")
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("grids", nargs="+", metavar="TITLE=PATH")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    tiles = []
    for spec in args.grids:
        title, _, path = spec.rpartition("=")  # titles may hold "=" (experiment=quality), paths do not
        tiles.append(titled_grid(title, samples(Path(path))))
    gap = 6
    canvas = Image.new("RGB", (sum(t.width for t in tiles) + gap * (len(tiles) - 1), tiles[0].height), "white")
    x = 0
    for tile in tiles:
        canvas.paste(tile, (x, 0))
        x += tile.width + gap
    args.out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(args.out)
    print(args.out)


if __name__ == "__main__":
    main()
