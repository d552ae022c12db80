"""Where the IDX files of a dataset come from: a local folder, a download, or a fallback shipped with the machine or the package."""

from __future__ import annotations

from pathlib import Path

SPLIT_STEMS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

BUNDLED_MNIST_SAMPLE = Path(__file__).parent / "mnist_sample"


def find_idx_files(directory: Path) -> dict[str, Path] | None:
    """The four IDX files in ``directory`` (plain preferred over ``.gz``), or None when any is missing."""
    found = {}
    for split, stem in SPLIT_STEMS.items():
        candidates = [directory / stem, directory / f"{stem}.gz"]
        present = [path for path in candidates if path.is_file()]
        if not present:
            return None
        found[split] = present[0]
    return found


def idx_files_present(directory: Path) -> list[Path]:
    """Any of the four IDX files in ``directory``: to tell an incomplete folder from an empty one."""
    return [
        path for stem in SPLIT_STEMS.values() for path in (directory / stem, directory / f"{stem}.gz") if path.is_file()
    ]


def candidate_dirs(root: Path, torchvision_name: str) -> list[Path]:
    """The layouts accepted under ``data.root``: the files flat in it, or torchvision's ``<root>/<Dataset>/raw``."""
    return [root, root / torchvision_name / "raw"]
