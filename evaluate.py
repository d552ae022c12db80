"""Score a trained GAN: python evaluate.py ckpt_path=... [num_samples=10000] (see conf/evaluate.yaml and README.md)."""

import hydra
from omegaconf import DictConfig

import ganlab.config.schemas  # noqa: F401  (registers the config schemas that conf/ extends)
from ganlab.evaluate import evaluate


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> float:
    return evaluate(cfg)["fid"]


if __name__ == "__main__":
    main()
