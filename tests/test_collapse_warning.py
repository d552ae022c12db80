"""The collapse warning on real training: a discriminator made to win, a generator that draws few classes."""

from __future__ import annotations

import pytest

from ganlab.callbacks.collapse_warning import CollapseWarning
from ganlab.data.sources import BUNDLED_MNIST_SAMPLE
from ganlab.train import train

from recorders import find

NO_FID = ["++callbacks.fid=null", "++callbacks.best_fid_checkpoint=null", "callbacks.sample_grid=null"]


def test_collapse_warning_fires_when_the_discriminator_wins_and_not_otherwise(make_cfg):
    # Logged every 4th step only: the warning must still see every step's D(x) to count a streak of 5.
    window = [
        "callbacks.collapse_warning.window=5",
        "callbacks.collapse_warning.margin=0.1",
        "model=mlp",
        "loss=nsgan",
        "trainer.max_steps=12",
        "trainer.log_every_n_steps=4",
        *NO_FID,
    ]
    # G frozen in practice, D fast: D soon tells the real digits from G's noise with near certainty.
    winning = train(make_cfg([*window, "optimizer.generator.lr=1e-12", "optimizer.discriminator.lr=1e-2"]))
    assert find(winning["trainer"], CollapseWarning).warned_at is not None
    balanced = train(make_cfg(window))
    assert find(balanced["trainer"], CollapseWarning).warned_at is None


@pytest.mark.slow
def test_class_collapse_warning_reads_the_fid_callbacks_coverage(make_cfg):
    # An untrained MLP G draws blobs that the MNIST classifier puts in very few classes.
    cfg = make_cfg(
        [
            "model=mlp",
            "trainer.max_steps=6",
            "trainer.limit_train_batches=2",
            "callbacks.sample_grid=null",
            "++callbacks.fid.num_samples=200",
            "callbacks.collapse_warning.coverage_window=2",
            f"data.root={BUNDLED_MNIST_SAMPLE}",
            "optimizer.generator.lr=1e-12",
        ]
    )
    result = train(cfg)
    warning = find(result["trainer"], CollapseWarning)
    assert result["metrics"]["val/coverage_kl"] > warning.max_coverage_kl
    assert warning.coverage_warned_at == 4  # the second of the validations after steps 2, 4 and 6
