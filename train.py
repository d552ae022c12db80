"""Train a GAN: python train.py model=dcgan loss=lsgan (see conf/train.yaml and README.md)."""

import hydra
from omegaconf import DictConfig

from ganlab.train import run


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    return run(cfg)  # the value of optimized_metric, for sweepers such as Optuna


if __name__ == "__main__":
    main()
