"""Score a trained GAN: python evaluate.py ckpt_path=... [num_samples=10000] (see conf/evaluate.yaml and README.md)."""

import hydra
from omegaconf import DictConfig

import ganlab.config.schemas  # noqa: F401  (registers the config schemas that conf/ extends)
from ganlab.evaluate import evaluate
from ganlab.run.console import quiet_library_messages


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> float:
    if not cfg.verbose:
        quiet_library_messages()
    return evaluate(cfg)["fid"]


if __name__ == "__main__":
    main()
