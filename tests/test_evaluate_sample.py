"""evaluate.py and sample.py on a checkpoint written by a real training run, rebuilt from the checkpoint alone."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ganlab.evaluate import evaluate
from ganlab.sample import sample
from ganlab.train import train

from conftest import app_config, compose_config


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """last.ckpt of a short run; the FID callback records its data in every checkpoint."""
    run_dir = tmp_path_factory.mktemp("run")
    train(compose_config(run_dir, ["model=mlp", "trainer.max_steps=20", "logger=csv"]))
    return run_dir / "checkpoints" / "last.ckpt"


def test_evaluate_scores_the_checkpoint_and_writes_json(checkpoint, tmp_path, capsys):
    cfg = app_config(
        "evaluate", tmp_path, [f"ckpt_path={checkpoint}", "num_samples=600", "metrics.kid_subset_size=300"]
    )
    results = evaluate(cfg)
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["fid"] == pytest.approx(results["fid"]) and written["fid"] > 0
    assert written["dataset"] == "MNIST" and written["reference"] == "test split (1000 images)"  # from the checkpoint
    assert written["global_step"] == 20 and written["num_samples"] == 600 and len(written["class_shares"]) == 10
    assert (
        written["feature_extractor"]["key"].startswith("mnist-")
        and written["feature_extractor"]["backbone"] == "classifier"
    )
    assert "FID" in capsys.readouterr().out


def test_evaluate_with_explicit_data_and_missing_checkpoint(checkpoint, tmp_path):
    cfg = app_config("evaluate", tmp_path, ["ckpt_path=nowhere.ckpt"])
    with pytest.raises(FileNotFoundError, match="ckpt_path=nowhere.ckpt"):
        evaluate(cfg)
    cfg = app_config(
        "evaluate",
        tmp_path,
        [
            f"ckpt_path={checkpoint}",
            "data=mnist",
            "data.download=false",
            "reference=val",
            "num_samples=300",
            "metrics.kid_subset_size=300",
        ],
    )
    assert evaluate(cfg)["reference"] == "val split (900 images)"


def test_sample_writes_a_grid_and_an_interpolation_grid(checkpoint, tmp_path):
    cfg = app_config(
        "sample",
        tmp_path,
        [f"ckpt_path={checkpoint}", "num_samples=64", "interpolation.rows=4", "interpolation.steps=6"],
    )
    paths = sample(cfg)
    tile = 28 + 2  # image + make_grid padding
    assert Image.open(paths["samples"]).size == (8 * tile + 2, 8 * tile + 2)
    assert Image.open(paths["interpolation"]).size == (6 * tile + 2, 4 * tile + 2)
    for path in paths.values():  # digits, not a blank or uniform image: every tile has dark and bright pixels
        pixels = torch.from_numpy(np.asarray(Image.open(path).convert("L"), dtype=np.float32))
        tiles = pixels[2:, 2:].unfold(0, 28, tile).unfold(1, 28, tile)  # (rows, cols, 28, 28) without padding
        assert (tiles.amax(dim=(2, 3)) - tiles.amin(dim=(2, 3))).min() > 50, path
