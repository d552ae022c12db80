"""Every GAN family under test, in one place: the overrides that make it small enough for a step in
milliseconds, the preset that pairs it with its data and loss, and the losses it accepts. Adding a family to
the framework adds one entry here; the contract test (``test_families.py``) runs each entry through the same
checks, and the tests that run every family (GPU, networks) read this too. Also the helpers those tests share."""

from __future__ import annotations

import csv
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ganlab.train import train

from conftest import compose_config

REPO = Path(__file__).resolve().parents[1]
LOSSES = ("gan", "nsgan", "lsgan", "wgan", "wgan_gp", "hinge", "rpgan", "began")
LOGIT_LOSSES = tuple(loss for loss in LOSSES if loss != "began")
# The losses of families with their own generator loss, which does not pair fakes with real images (not rpgan).
UNPAIRED_LOSSES = tuple(loss for loss in LOGIT_LOSSES if loss != "rpgan")
NO_FID = ("callbacks.fid=null", "callbacks.best_fid_checkpoint=null")  # short runs that need no val/fid
TINY_CONV = ("model.generator.base_channels=8", "model.discriminator.base_channels=8")


@dataclass(frozen=True)
class Family:
    model: str  # model=<model>
    small: tuple[str, ...]  # small widths
    preset: str | None = None  # experiment=<preset>: the family's data, loss and callbacks
    losses: tuple[str, ...] = LOGIT_LOSSES  # the loss= options it trains with (the others fail in one line)
    trains_alone: bool = True  # whether `python train.py model=<model>` trains on the default data (MNIST)
    data: str | None = None  # the data= it needs, when not the default
    extra: tuple[str, ...] = field(default=())  # what its short runs need besides (a validation interval, ...)

    def model_overrides(self) -> list[str]:
        """The small widths alone (``model.*``), for the family without its preset's loss and data settings."""
        return [o for o in self.small if o.startswith("model.")]

    def with_loss(self, loss: str) -> list[str]:
        """The small family on its data with ``loss``, without the preset (whose loss settings are its own loss's)."""
        data = [f"data={self.data}"] if self.data else []
        return [f"model={self.model}", *self.model_overrides(), *data, f"loss={loss}"]

    def overrides(self, *more: str) -> list[str]:
        """The small family as its preset sets it up (or on the defaults), then ``more`` (which replace the
        family's own value of a key they set)."""
        preset = [f"experiment={self.preset}"] if self.preset else []
        replaced = {override.split("=", 1)[0] for override in more}
        own = [o for o in (*self.small, *self.extra) if o.split("=", 1)[0] not in replaced]
        return [*preset, f"model={self.model}", *own, *more]


FAMILIES = {
    "mlp": Family("mlp", ("model.generator.hidden_dim=32", "model.discriminator.hidden_dim=32")),
    "dcgan": Family("dcgan", TINY_CONV),
    "cgan": Family("cgan", (*TINY_CONV, "model.samples_per_class=2"), preset="cgan"),
    "acgan": Family("acgan", (*TINY_CONV, "model.samples_per_class=2"), preset="acgan"),
    "sgan": Family(
        "sgan",
        ("model.generator.hidden_dims=[32]", "model.discriminator.hidden_dims=[32,32]", "data.labels_per_class=10"),
        preset="sgan",
        losses=UNPAIRED_LOSSES,
    ),
    "began": Family(
        "began",
        ("model.generator.base_channels=4", "model.discriminator.base_channels=4", "loss.lambda_k=0.5"),
        preset="began",
        losses=("began",),
        trains_alone=False,  # its autoencoder D scores by reconstruction error: loss=began (the default is hinge)
    ),
    "cyclegan": Family(
        "cyclegan",
        (
            "model.generator.base_channels=4",
            "model.generator.num_blocks=1",
            "model.discriminator.base_channels=4",
            "model.pool_size=6",
            "data.batch_size=4",
        ),
        preset="cyclegan",
        losses=UNPAIRED_LOSSES,
        trains_alone=False,
        data="digits_to_mnist",  # two unpaired domains
        extra=("trainer.val_check_interval=null",),
    ),
    "stackgan": Family(
        "stackgan",
        (
            "model.generator.base_channels=4",
            "model.generator.num_blocks=1",
            "model.generator.condition_dim=4",
            "model.discriminator.base_channels=4",
            "model.discriminator.embed_dim=4",
            "model.text_encoder.text_dim=8",
            "model.text_encoder.embedding_dim=4",
            "model.text_encoder.hidden_dim=8",
            "data.batch_size=8",
        ),
        preset="stackgan",
        losses=UNPAIRED_LOSSES,
        trains_alone=False,
        data="captioned_mnist",  # captions
        extra=("trainer.val_check_interval=null", "trainer.check_val_every_n_epoch=1"),
    ),
    "infogan": Family(
        "infogan",
        (
            *TINY_CONV,
            "model.generator.hidden=32",
            "model.discriminator.hidden=16",
            "model.grid_columns=3",
            "model.q_head.hidden=16",
        ),
        preset="infogan",
        losses=tuple(loss for loss in UNPAIRED_LOSSES if loss != "wgan_gp"),  # its D has BatchNorm
    ),
}


# ---- exact resume -------------------------------------------------------------------------------------
# Epochs of 4 batches, so that runs of 10 steps cross epoch ends and validations; a checkpoint every 2 steps.
SHORT_EPOCHS = [
    "logger=csv",
    "trainer.deterministic=true",
    "trainer.limit_train_batches=4",
    "callbacks.model_checkpoint.every_n_train_steps=2",
    "callbacks.sample_grid=null",
    "++callbacks.fid=null",
    "++callbacks.best_fid_checkpoint=null",
]


def logged_losses(run_dir: Path) -> dict[int, tuple[str, ...]]:
    """{step: (loss/d, loss/g, D(x), D(G(z)))} as written to the CSV log, compared as the exact strings."""
    with open(run_dir / "csv" / "metrics.csv") as f:
        return {
            int(row["step"]): (row["loss/d"], row["loss/g"], row["D(x)"], row["D(G(z))"])
            for row in csv.DictReader(f)
            if row.get("loss/d")
        }


def resume_and_compare(tmp_path: Path, args: list[str], resume_step: int):
    """(uninterrupted run, run resumed from its step-``resume_step`` checkpoint), both trained to step 10."""
    full = train(compose_config(tmp_path / "full", [*SHORT_EPOCHS, *args, "trainer.max_steps=10"]))
    checkpoint = tmp_path / "full" / "checkpoints" / f"step_{resume_step:07d}.ckpt"
    resumed = train(
        compose_config(tmp_path / "resumed", [*SHORT_EPOCHS, *args, "trainer.max_steps=10", f"ckpt_path={checkpoint}"])
    )
    return full, resumed


def adam_steps(optimizer: torch.optim.Optimizer) -> int:
    """The updates an Adam optimizer applied: its per-parameter ``step`` state (max over the parameters)."""
    return max((int(state["step"]) for state in optimizer.state.values() if "step" in state), default=0)


def run_script(
    script: str | Path, *args: str, timeout: float = 300, cwd: Path = REPO, **kwargs
) -> subprocess.CompletedProcess:
    """``python <script> <args>`` as a user types it, from the repository root (or ``cwd``); output captured as
    text. ``script`` is relative to the repository, or an absolute path."""
    return subprocess.run(
        [sys.executable, str(REPO / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )
