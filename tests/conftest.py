"""Shared test helpers: compose the real Hydra config (as train.py does) with small, fast overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import ganlab.config.family_schemas  # noqa: F401  (registers the config schemas that conf/ extends)

CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf"

# Small and quick on 2 CPU cores: a few steps, no progress bar, no download attempt.
FAST = [
    "trainer.max_steps=4",
    "trainer.log_every_n_steps=1",
    "trainer.limit_val_batches=2",
    "trainer.enable_model_summary=false",
    "callbacks.progress_bar=null",
    "data.download=false",
    "data.batch_size=16",
]


def compose_config(output_dir: Path, overrides: list[str] = (), config_name: str = "train") -> DictConfig:
    """The composed config train.py would see, with its outputs under ``output_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=[*FAST, *overrides], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # so ${hydra:...} resolves as in a real run
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.data_dir = str(output_dir / "data")
        del cfg.hydra
    return cfg


def app_config(name: str, out_dir: Path, overrides: list[str]) -> DictConfig:
    """The config ``python <name>.py <overrides>`` gets (evaluate, sample), writing into ``out_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name=name, overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out_dir)
    return cfg


@pytest.fixture
def make_cfg(tmp_path):
    """make_cfg(["model=mlp", "loss=lsgan"]) -> a composed config writing under tmp_path."""
    return lambda overrides=(), config_name="train": compose_config(tmp_path, list(overrides), config_name)
