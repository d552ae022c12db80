"""Checks on a composed config that composition cannot make, and the resolver behind a resumed run's dir.

Keys and types are checked by Hydra against ``ganlab.schemas`` while it composes; here come the bounds in
the schemas' field metadata (``lr > 0``, ``batch_size >= 1``) and whether the output dir can be written,
before anything is built or written.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import MISSING, DictConfig, OmegaConf

import ganlab.schemas  # noqa: F401  (registers the schemas that the YAML files extend)


class ConfigError(ValueError):
    """A config value that cannot work. The message names the key and the fix."""


def _bound_violation(key: str, value: Any, metadata: dict[str, Any]) -> str | None:
    if "above" in metadata and not value > metadata["above"]:
        return f"{key}={value} must be > {metadata['above']}"
    if "at_least" in metadata and not value >= metadata["at_least"]:
        return f"{key}={value} must be >= {metadata['at_least']}"
    return None


def check_bounds(cfg: DictConfig, prefix: str = "") -> None:
    """Raise ConfigError for the first value outside the bounds its schema declares."""
    schema = OmegaConf.get_type(cfg)
    fields = {f.name: f for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else {}
    for key in cfg:
        name = f"{prefix}{key}"
        if OmegaConf.is_missing(cfg, key):
            continue
        value = cfg[key]
        if isinstance(value, DictConfig):
            check_bounds(value, prefix=f"{name}.")
        elif key in fields and value is not None and isinstance(value, (int, float)):
            problem = _bound_violation(name, value, dict(fields[key].metadata))
            if problem:
                default = fields[key].default
                example = f", e.g. {name}={default}" if default not in (MISSING, None, dataclasses.MISSING) else ""
                raise ConfigError(f"{problem}; set {name} to a value in range{example}")


def check_output_dir(output_dir: str | Path) -> None:
    """Fail before training when the run's outputs (checkpoints, logs) could not be written there.

    Probes with a temporary file in the nearest folder that exists (permission bits say nothing for root, and
    nothing is left behind)."""
    path = Path(output_dir).absolute()
    existing = next(parent for parent in [path, *path.parents] if parent.exists())
    try:
        if not existing.is_dir():
            raise NotADirectoryError(f"{existing} is a file")
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as err:
        raise ConfigError(
            f"cannot write the run's outputs to {path} ({err.strerror or err}); make {existing} writable or choose "
            f"another place: hydra.run.dir=<dir> (hydra.sweep.dir=<dir> for -m)"
        ) from None


def check_config(cfg: DictConfig) -> None:
    """Everything that can be known wrong about ``cfg`` before training starts."""
    check_bounds(cfg)
    if cfg.get("paths") is not None and cfg.paths.get("output_dir"):
        check_output_dir(cfg.paths.output_dir)


def resume_dir(ckpt_path: str | None, default: str) -> str:
    """hydra.run.dir for ``ckpt_path``: a checkpoint under ``<run>/checkpoints/`` resumes in ``<run>``, so its
    TensorBoard curves, CSV log and checkpoints go on in one place. Anything else gets ``default``."""
    if ckpt_path:
        path = Path(ckpt_path)
        if path.parent.name == "checkpoints" and path.is_file():
            return str(path.parent.parent)
    return default


class CheckOutputDir(Callback):
    """A Hydra callback (conf/hydra/default.yaml): an unwritable run or sweep dir stops with one line before
    Hydra tries to create it (which would end in a traceback)."""

    def _check(self, run_dir: str) -> None:
        try:
            check_output_dir(run_dir)
        except ConfigError as err:
            raise SystemExit(f"error: {err}") from None

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config.hydra.run.dir)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config.hydra.sweep.dir)


OmegaConf.register_new_resolver("resume_dir", resume_dir, replace=True)
