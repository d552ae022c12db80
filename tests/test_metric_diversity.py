"""Scores that see diversity inside a class: precision/recall and density/coverage on known point sets, and
real-data "generators" ranked the right way: held-out real images, three fixed images per class, one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ganlab.data.fashion_mnist import FashionMNISTDataModule
from ganlab.data.mnist import MNISTDataModule
from ganlab.data.sources import BUNDLED_MNIST_SAMPLE
from ganlab.evaluate import evaluate
from ganlab.metrics.diversity_check import check, fixed_per_class
from ganlab.metrics.manifold import ManifoldScores, knn_radii, manifold_scores

from conftest import app_config


@pytest.fixture(scope="module")
def points():
    generator = torch.Generator().manual_seed(0)
    return torch.randn(300, 16, generator=generator), torch.randn(
        300, 16, generator=generator
    )  # two draws of one Gaussian


def test_identical_sets_score_one(points):
    real, _ = points
    scores = manifold_scores(real, real.clone())
    assert scores["precision"] == scores["recall"] == scores["coverage"] == 1.0
    assert scores["density"] == pytest.approx(1.0, abs=0.05)


def test_samples_from_the_same_distribution_score_high(points):
    scores = manifold_scores(*points)
    assert (
        min(scores["precision"], scores["recall"]) > 0.5 and scores["coverage"] > 0.9 and 0.7 < scores["density"] < 1.3
    )


def test_one_point_repeated_has_no_recall_or_coverage(points):
    real, fake = points
    collapsed = real[:1].expand(300, -1)  # a real point, so it is on the real manifold: high precision
    scores = manifold_scores(real, collapsed)
    assert scores["precision"] == 1.0
    assert scores["recall"] < 0.01 and scores["coverage"] < 0.03
    assert manifold_scores(real, fake[:1].expand(300, -1))["recall"] < 0.01


def test_disjoint_sets_score_zero(points):
    real, fake = points
    scores = manifold_scores(real, fake + 50)
    assert scores == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_knn_radii_exclude_the_point_itself():
    line = torch.tensor([[0.0], [1.0], [3.0], [6.0]])  # (4, 1)
    radii = knn_radii(line, (1, 2))
    assert radii[1].tolist() == [1.0, 1.0, 2.0, 3.0] and radii[2].tolist() == [3.0, 2.0, 3.0, 5.0]
    with pytest.raises(ValueError, match="more than 5 points"):
        knn_radii(line, (5,))


def test_metric_keeps_real_features_across_reset(points):
    real, fake = points
    metric = ManifoldScores(torch.nn.Identity())  # the points are the features
    metric.update(real, real=True)
    metric.update(fake, real=False)
    first = metric.compute()
    metric.reset()
    metric.update(fake, real=False)
    assert metric.compute() == first == manifold_scores(real, fake)
    metric.reset()
    metric.update(fake[:4], real=False)  # fewer than k + 1 samples: NaN rather than an error in a training run
    assert all(value != value for value in metric.compute().values())


def test_fixed_per_class_cycles_through_every_class():
    labels = torch.arange(10).repeat(20)  # (200,)
    images = torch.arange(200)[:, None, None].expand(-1, 2, 2)  # image i is filled with i
    picked = fixed_per_class(images, labels, 3, 60)
    assert (labels[picked[:, 0, 0]] == torch.arange(60) % 10).all()
    assert len(picked[:, 0, 0].unique()) == 30


def datamodule(name, tmp_path_factory):
    if name == "mnist":
        return MNISTDataModule(root=str(tmp_path_factory.mktemp("data")), download=False)  # the bundled sample
    fashion = FashionMNISTDataModule(root="/nonexistent", download=False)
    if not any(fashion.system_dirs[0].glob("t10k-images*")):
        pytest.skip("Fashion-MNIST is not on this machine (Debian's dataset-fashion-mnist)")
    return fashion


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_one_image_per_class_scores_far_worse_than_real_data(name, tmp_path_factory):
    # 400 samples against 500 test images: seconds on two cores, yet the gaps are wide.
    results = check(
        datamodule(name, tmp_path_factory), num_samples=400, num_real=500, train_if_missing=False, kid_subset_size=200
    )
    real, three, one = results["(a) real"], results["(c) 3 per class"], results["(b) 1 per class"]
    assert (
        real["coverage_kl"] < 0.1 and one["coverage_kl"] < 0.01
    )  # every class there: class coverage sees nothing wrong
    assert (
        3 * real["fid"] < three["fid"] < one["fid"] and one["fid"] > 8 * real["fid"]
    )  # 10x and 13x measured on 400 vs 500
    assert real["kid_mean"] < three["kid_mean"] < one["kid_mean"]
    assert real["recall"] > 0.5 > 0.05 > max(three["recall"], one["recall"])  # repeated images: balls of radius 0
    assert real["coverage"] > 0.8 > 0.5 > three["coverage"] > one["coverage"]
    assert min(three["precision"], one["precision"]) > 0.5  # the images themselves are real: fidelity is fine


def test_evaluate_prints_and_saves_the_diversity_scores(tmp_path, capsys):
    checkpoint = Path(__file__).parent / "fixtures" / "pre_layout_mlp.ckpt"  # two updates: samples are noise
    cfg = app_config(
        "evaluate",
        tmp_path,
        [
            f"ckpt_path={checkpoint}",
            "data=mnist",
            "data.download=false",
            f"data.root={BUNDLED_MNIST_SAMPLE}",
            "num_samples=200",
            "metrics.kid_subset_size=100",
        ],
    )
    results = evaluate(cfg)
    written = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("precision", "recall", "density", "coverage"):
        assert written[key] == results[key] and 0 <= written[key] <= 0.1  # noise is off the real manifold
    out = capsys.readouterr().out
    assert "precision / recall" in out and "density / coverage" in out
