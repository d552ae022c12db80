"""Sample grids from a trained GAN: python sample.py ckpt_path=... num_samples=64 (see conf/sample.yaml and README.md)."""

import sys

import hydra
from omegaconf import DictConfig

import ganlab.config.schemas  # noqa: F401  (registers the config schemas that conf/ extends)
from ganlab.data.captions import CaptionError
from ganlab.run.console import quiet_library_messages
from ganlab.sample import sample


@hydra.main(version_base="1.3", config_path="conf", config_name="sample")
def main(cfg: DictConfig) -> None:
    if not cfg.verbose:
        quiet_library_messages()
    try:
        sample(cfg)
    except CaptionError as err:  # an empty caption or an unknown word: one line naming the vocabulary
        sys.stderr.write(f"error: {err}\n")
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
