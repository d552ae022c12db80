"""Checkpoints from the user's side: whether one can be resumed into this run's model, and the class paths of
checkpoints saved before the package moved to its ``models/`` + ``networks/`` layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

# Class paths a checkpoint may hold (``gan_class``, hyper-parameters' ``_target_``, the data record), as they
# were before the layout move, and where those classes live now. Tested with checkpoints the old code saved.
MOVED = {
    "ganlab.module.GAN": "ganlab.models.gan.GAN",
    "ganlab.conditional.ConditionalGAN": "ganlab.models.cgan.ConditionalGAN",
    "ganlab.conditional.ACGAN": "ganlab.models.acgan.ACGAN",
    "ganlab.semi_supervised.SemiSupervisedGAN": "ganlab.models.sgan.SemiSupervisedGAN",
    "ganlab.models.mlp.Generator": "ganlab.networks.mlp.Generator",
    "ganlab.models.mlp.Discriminator": "ganlab.networks.mlp.Discriminator",
    "ganlab.models.dcgan.Generator": "ganlab.networks.dcgan.Generator",
    "ganlab.models.dcgan.Discriminator": "ganlab.networks.dcgan.Discriminator",
    "ganlab.models.conditional.Generator": "ganlab.networks.conditional_dcgan.Generator",
    "ganlab.models.conditional.ProjectionDiscriminator": "ganlab.networks.conditional_dcgan.ProjectionDiscriminator",
    "ganlab.models.conditional.AuxiliaryClassifierDiscriminator": "ganlab.networks.conditional_dcgan.AuxiliaryClassifierDiscriminator",
    "ganlab.models.began.Generator": "ganlab.networks.autoencoder.Generator",
    "ganlab.models.began.Discriminator": "ganlab.networks.autoencoder.Discriminator",
    "ganlab.models.sgan.Generator": "ganlab.networks.improved_gan.Generator",
    "ganlab.models.sgan.Discriminator": "ganlab.networks.improved_gan.Discriminator",
    "ganlab.data.datamodule.MNISTDataModule": "ganlab.data.mnist.MNISTDataModule",
    "ganlab.data.datamodule.FashionMNISTDataModule": "ganlab.data.fashion_mnist.FashionMNISTDataModule",
}


def current_target(target: str) -> str:
    """Today's path of a class a checkpoint names (unchanged when it did not move)."""
    return MOVED.get(target, target)


def legacy_hparams(hparams: dict[str, Any]) -> dict[str, Any]:
    """The network configs among ``hparams`` whose ``_target_`` moved, with today's path: keyword overrides for
    ``load_from_checkpoint``. Empty for checkpoints saved by this layout."""
    updated = {}
    for key in ("generator", "discriminator"):
        node = hparams.get(key)
        if isinstance(node, dict) and node.get("_target_") in MOVED:
            updated[key] = node | {"_target_": current_target(node["_target_"])}
    return updated


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be resumed from: missing, unreadable, or from another model config."""


def _model_settings(hparams: dict[str, Any], prefix: str = "model.") -> dict[str, Any]:
    """Flat ``model.*`` settings from a GAN's hyperparameters, as a user would type them."""
    flat = {}
    for key, value in hparams.items():
        if key in ("loss", "optimizer"):
            continue
        if isinstance(value, dict):
            flat |= _model_settings(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def check_resumable(ckpt_path: str | None, model: torch.nn.Module, output_dir: str | Path) -> None:
    """Fail with one line, before training, when ``ckpt_path`` cannot be resumed into ``model``.

    A checkpoint of another architecture would otherwise fail deep in ``load_state_dict`` with a list of
    mismatched tensors; this names the model settings that differ instead.
    """
    if ckpt_path in (None, "best", "hpc", "registry"):
        return
    path = Path(output_dir) / "checkpoints" / "last.ckpt" if ckpt_path == "last" else Path(ckpt_path)
    if ckpt_path == "last" and not path.exists():
        return  # Lightning starts from scratch with a warning: a first run under a "resume if possible" command
    if not path.is_file():
        raise CheckpointError(
            f"ckpt_path={ckpt_path}: no such checkpoint file; give the path of a .ckpt file "
            f"(outputs/runs/<run>/checkpoints/last.ckpt), or drop ckpt_path to start a new run"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        state, hparams = checkpoint["state_dict"], checkpoint.get("hyper_parameters", {})
    except Exception as err:  # truncated file, not a checkpoint at all
        raise CheckpointError(f"ckpt_path={ckpt_path}: not a readable Lightning checkpoint ({type(err).__name__}); use another checkpoint of the run, e.g. its step_*.ckpt") from None
    expected = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    found = {name: tuple(tensor.shape) for name, tensor in state.items()}
    if expected == found:
        return
    ours, theirs = _model_settings(dict(getattr(model, "hparams", {}))), _model_settings(hparams)
    keys = sorted(ours.keys() | theirs.keys(), key=lambda key: (not key.endswith("_target_"), key))  # architectures first
    differing = [f"{key}={theirs.get(key)!r} (here {ours.get(key)!r})" for key in keys if ours.get(key) != theirs.get(key)]
    detail = "; ".join(differing[:4]) if differing else "the same settings but other tensor shapes"
    raise CheckpointError(
        f"ckpt_path={ckpt_path} was trained with another model config: {detail}. Resume it with the model "
        f"settings it was trained with, or start a new run without ckpt_path"
    )
