"""Sample grids from a trained GAN: python sample.py ckpt_path=... num_samples=64 (see conf/sample.yaml and README.md)."""

import hydra
from omegaconf import DictConfig

import ganlab.config  # noqa: F401  (registers the config schemas that conf/ extends)
from ganlab.sample import sample


@hydra.main(version_base="1.3", config_path="conf", config_name="sample")
def main(cfg: DictConfig) -> None:
    sample(cfg)


if __name__ == "__main__":
    main()
