"""Train a GAN: python train.py model=dcgan loss=lsgan (see conf/train.yaml and README.md)."""

import hydra
from omegaconf import DictConfig

from ganlab.train import train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    train(cfg)


if __name__ == "__main__":
    main()
