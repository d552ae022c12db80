"""Checkpoints from the user's side: whether one can be resumed into this run's model, and the class paths of
checkpoints saved before the package moved to its ``models/`` + ``networks/`` layout."""

from __future__ import annotations

import errno
import io
import logging
import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

log = logging.getLogger(__name__)

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


def _load(path: Path) -> dict[str, Any]:
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    checkpoint["state_dict"]  # noqa: B018  (a checkpoint at all)
    return checkpoint


def newest_good_checkpoint(directory: Path, skip: Path) -> tuple[Path, dict[str, Any]] | None:
    """The readable checkpoint of ``directory`` with the highest ``global_step`` (newest file on a tie)."""
    best = None
    for candidate in sorted(directory.glob("*.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True):
        if candidate == skip:
            continue
        try:
            checkpoint = _load(candidate)
        except Exception:  # noqa: BLE001  (damaged too: try the next)
            continue
        if best is None or checkpoint.get("global_step", -1) > best[1].get("global_step", -1):
            best = (candidate, checkpoint)
    return best


def repair_epoch_progress(trainer: Any) -> None:
    """Count the epoch that Lightning (2.6) runs without counting its start after a resume at an epoch's end.

    Resumed from a checkpoint written after the last batch of an epoch, Lightning finishes that epoch, then runs
    the next one without ``increment_ready``/``increment_started`` (its restart stage is still "mid-epoch" when
    the epoch starts). Every checkpoint of that epoch then says ready = started = completed, which a later resume
    reads as "this epoch never started": it runs the epoch again, with the sampler 4 batches on in the epoch's
    order, and the run is no longer the uninterrupted one. Called before every training batch; within an epoch
    Lightning's own invariant is ready = started = processed + 1, so this only acts where Lightning skipped it.
    """
    progress = trainer.fit_loop.epoch_progress
    for counts in (progress.current, progress.total):
        if counts.started <= counts.processed:
            counts.ready = counts.started = counts.processed + 1


def check_resumable(ckpt_path: str | None, model: torch.nn.Module, output_dir: str | Path) -> str | None:
    """The checkpoint to resume from; fail with one line, before training, when ``ckpt_path`` cannot be resumed
    into ``model``.

    A checkpoint of another architecture would otherwise fail deep in ``load_state_dict`` with a list of
    mismatched tensors; this names the model settings that differ instead. A damaged ``last.ckpt`` (a disk that
    lost its tail, a copy cut short) gives way, with a warning, to the newest good checkpoint beside it.
    """
    if ckpt_path in (None, "best", "hpc", "registry"):
        return ckpt_path
    path = Path(output_dir) / "checkpoints" / "last.ckpt" if ckpt_path == "last" else Path(ckpt_path)
    if ckpt_path == "last" and not path.exists():
        return (
            ckpt_path  # Lightning starts from scratch with a warning: a first run under a "resume if possible" command
        )
    if not path.is_file():
        raise CheckpointError(
            f"ckpt_path={ckpt_path}: no such checkpoint file; give the path of a .ckpt file "
            f"(outputs/runs/<run>/checkpoints/last.ckpt), or drop ckpt_path to start a new run"
        )
    try:
        checkpoint = _load(path)
    except Exception as err:  # truncated file, not a checkpoint at all
        fallback = newest_good_checkpoint(path.parent, skip=path) if path.name == "last.ckpt" else None
        if fallback is None:
            raise CheckpointError(
                f"ckpt_path={ckpt_path}: not a readable Lightning checkpoint ({type(err).__name__}); use another checkpoint of the run, e.g. its step_*.ckpt"
            ) from None
        log.warning(
            "%s is damaged (%s): resuming from %s (step %s), the newest good checkpoint of the run",
            path,
            type(err).__name__,
            fallback[0],
            fallback[1].get("global_step"),
        )
        path, checkpoint = fallback
        ckpt_path = str(path)
    state, hparams = checkpoint["state_dict"], checkpoint.get("hyper_parameters", {})
    expected = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    found = {name: tuple(tensor.shape) for name, tensor in state.items()}
    if expected == found:
        return ckpt_path if ckpt_path == "last" else str(path)
    ours, theirs = _model_settings(dict(getattr(model, "hparams", {}))), _model_settings(hparams)
    # Architectures first, then settings both configs name; a setting the checkpoint predates (saved before it
    # existed) is rarely the culprit and comes last.
    keys = sorted(
        ours.keys() | theirs.keys(),
        key=lambda key: (not key.endswith("_target_"), not (key in ours and key in theirs), key),
    )
    differing = [
        f"{key}={theirs.get(key)!r} (here {ours.get(key)!r})" for key in keys if ours.get(key) != theirs.get(key)
    ]
    detail = "; ".join(differing[:4]) if differing else "the same settings but other tensor shapes"
    raise CheckpointError(
        f"ckpt_path={ckpt_path} was trained with another model config: {detail}. Resume it with the model "
        f"settings it was trained with, or start a new run without ckpt_path"
    )


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory
    finally:
        os.close(fd)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoint writes that a crash cannot tear: the bytes go to a temporary file beside the target, which is
    fsynced and then renamed over it. A run killed at any moment (SIGKILL, power) leaves the previous file or
    the new one, never half of one; a full disk fails with one line and leaves the previous checkpoint intact.

    (Lightning's own write truncates the target first and then writes it: a kill in between loses ``last.ckpt``.)
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)  # serialize first: an error here touches no file
        temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            with open(temporary, "wb") as f:
                self._write(f, buffer.getbuffer())
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, path)
            _fsync_dir(path.parent)
        except OSError as err:
            temporary.unlink(missing_ok=True)
            kept = [p.name for p in sorted(path.parent.glob("*.ckpt"), key=lambda p: p.stat().st_mtime)]
            intact = f"{path.name} as it was" if path.exists() else f"no partial {path.name}"
            what = "the disk is full" if err.errno in (errno.ENOSPC, errno.EDQUOT) else (err.strerror or str(err))
            raise CheckpointError(
                f"could not write checkpoint {path}: {what}; kept {intact} (checkpoints in {path.parent}: "
                f"{', '.join(kept) or 'none'}). Free space (or choose hydra.run.dir elsewhere) and resume with "
                f"ckpt_path={path.parent / 'last.ckpt'}"
            ) from None

    @staticmethod
    def _write(f: Any, data: memoryview) -> None:
        """The one write (a seam for tests that simulate a full disk)."""
        f.write(data)

    @staticmethod
    def remove_stale_temporaries(directory: Path) -> None:
        """Temporary files of writes that a killed run left behind."""
        for stale in directory.glob(".*.ckpt.tmp-*"):
            stale.unlink(missing_ok=True)
