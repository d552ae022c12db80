"""The UCI handwritten digits (``data=uci_digits``): 1,797 real 8x8 digits resized to 28x28, always the bundled copy.

They come from scikit-learn's ``load_digits`` through ``bundle_uci_digits.py`` (see ``uci_digits/PROVENANCE.md``);
nothing is downloaded and ``data.root`` is not searched, so MNIST files lying there are never taken for them.
"""

from __future__ import annotations

from pathlib import Path

from ganlab.data.idx_datamodule import IDXDataModule
from ganlab.data.sources import find_idx_files

BUNDLED_UCI_DIGITS = Path(__file__).parent / "uci_digits"


class UCIDigitsDataModule(IDXDataModule):
    name = "UCI-Digits"  # conf/data/uci_digits.yaml; the classifier key uci_digits-<checksum>
    torchvision_name = "UCIDigits"  # no such torchvision dataset: never downloaded

    def _local_files(self):
        return find_idx_files(BUNDLED_UCI_DIGITS)

    def prepare_data(self) -> None:
        """Nothing to download: the digits ship with the package."""
