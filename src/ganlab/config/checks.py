"""Checks on a composed config that composition cannot make, and the resolver behind a resumed run's dir.

Keys and types are checked by Hydra against ``ganlab.config.schemas`` while it composes; here come the bounds in
the schemas' field metadata (``lr > 0``, ``batch_size >= 1``) and whether the output dir can be written,
before anything is built or written.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import MISSING, DictConfig, OmegaConf

from ganlab.config.bounds import Bound


class ConfigError(ValueError):
    """A config value that cannot work. The message names the key and the fix."""


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
            problem = Bound(**fields[key].metadata).violation(name, value)
            if problem:
                default = fields[key].default
                example = f", e.g. {name}={default}" if default not in (MISSING, None, dataclasses.MISSING) else ""
                raise ConfigError(f"{problem}; set {name} to a value in range{example}")


def check_image_shape(cfg: DictConfig) -> None:
    """The networks are built for ``image_shape``: one that differs from the data's fails here, in one line."""
    data_shape = cfg.get("data", {}).get("image_shape") if isinstance(cfg.get("data"), DictConfig) else None
    model = cfg.get("model")
    if data_shape is None or not isinstance(model, DictConfig):
        return
    if len(data_shape) != 3 or any(not isinstance(n, int) or n < 1 for n in data_shape):
        raise ConfigError(
            f"data.image_shape={list(data_shape)} must be [channels, height, width] of positive integers, e.g. [1, 28, 28]"
        )
    for network in ("generator", "discriminator"):
        node = model.get(network)
        shape = node.get("image_shape") if isinstance(node, DictConfig) else None
        if shape is not None and list(shape) != list(data_shape):
            raise ConfigError(
                f"model.{network}.image_shape={list(shape)} but the data's images are data.image_shape={list(data_shape)}; "
                f"leave model.{network}.image_shape to follow data.image_shape"
            )


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


def where_defined(schema: type) -> str:
    """Where a schema's fields are written: a class signature (models, losses) or ganlab/config/schemas.py."""
    target = next((f.default for f in dataclasses.fields(schema) if f.name == "_target_"), None)
    if isinstance(target, str) and target.startswith("ganlab.") and schema.__module__ != "ganlab.config.schemas":
        return f"the signature of {target}"
    return "ganlab/config/schemas.py"


def check_schema_keys(cfg: DictConfig, prefix: str = "") -> None:
    """Raise ConfigError for a key that a schema'd group does not have. ``+model.some_key=3`` adds a key even
    to a structured config (Hydra's ``+`` forces it in), which would fail deep in instantiation instead."""
    for key in cfg:
        name = f"{prefix}{key}"
        if key == "hydra" and not prefix:
            continue
        node = cfg._get_node(key)
        if not isinstance(node, DictConfig) or node._is_missing() or node._is_none():
            continue
        schema = OmegaConf.get_type(node)
        if dataclasses.is_dataclass(schema):
            known = [f.name for f in dataclasses.fields(schema)]
            unknown = [str(k) for k in node if k not in known]
            if unknown:
                raise ConfigError(
                    f"{name}.{unknown[0]}: not a key of {name} ({schema.__name__}); its keys are {', '.join(known)}. "
                    f"Check the spelling, or add it to {where_defined(schema)}"
                )
        check_schema_keys(node, prefix=f"{name}.")


def check_choices(choices: dict[str, Any], options: Any) -> None:
    """Raise ConfigError when a group's chosen option does not exist. Hydra skips a missing option of an
    ``optional`` group (``experiment``, ``hparams_search``) in silence: ``experiment=dcgan_lsgn`` would train
    the default config. ``options(group)`` lists a group's options."""
    for group, choice in choices.items():
        if not isinstance(choice, str) or group.startswith("hydra/"):
            continue
        available = options(group)
        if available and choice not in available:
            raise ConfigError(
                f"{group}={choice}: no such option in conf/{group}/; options: {', '.join(sorted(available))}"
            )


def check_sync_batchnorm(cfg: DictConfig) -> None:
    """torch's SyncBatchNorm refuses CPU tensors (in its first forward, deep in the first step): say so first."""
    trainer = cfg.get("trainer")
    if isinstance(trainer, DictConfig) and trainer.get("sync_batchnorm") and trainer.get("accelerator") == "cpu":
        raise ConfigError(
            "trainer.sync_batchnorm=true needs GPUs (torch's SyncBatchNorm runs on CUDA tensors only); "
            "drop it on the CPU (trainer.sync_batchnorm=false): each CPU rank then normalizes its own batch"
        )


def check_config(cfg: DictConfig) -> None:
    """Everything that can be known wrong about ``cfg`` before training starts."""
    check_schema_keys(cfg)
    check_bounds(cfg)
    check_image_shape(cfg)
    check_sync_batchnorm(cfg)
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


def _group_options(config: DictConfig) -> Any:
    """``options(group)`` over the config sources this composition used (conf/ and any hydra.searchpath)."""
    from hydra._internal.config_repository import ConfigRepository
    from hydra._internal.config_search_path_impl import ConfigSearchPathImpl

    search_path = ConfigSearchPathImpl()
    for source in config.hydra.runtime.config_sources:
        search_path.append(source.provider, f"{source.schema}://{source.path}")
    repository = ConfigRepository(search_path)

    def options(group: str) -> list[str]:
        try:
            return repository.get_group_options(group)
        except Exception:  # not a group these sources know: nothing to check against
            return []

    return options


class CheckOutputDir(Callback):
    """A Hydra callback (conf/hydra/default.yaml): before Hydra creates the run dir, an unwritable run or sweep
    dir, a group option that does not exist (``experiment=typo``) and a key that a group's schema lacks
    (``+model.some_key=3``) stop with one line (exit 1) instead of a traceback or a silently different run."""

    def _check(self, run_dir: str | None, config: DictConfig) -> None:
        try:
            if run_dir is not None:
                check_output_dir(run_dir)
            check_choices(dict(config.hydra.runtime.choices), _group_options(config))
            check_schema_keys(config)
        except ConfigError as err:
            raise SystemExit(f"error: {err}") from None

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config.hydra.run.dir, config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            check_output_dir(config.hydra.sweep.dir)
        except ConfigError as err:
            raise SystemExit(f"error: {err}") from None

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.mode == RunMode.MULTIRUN:  # each job of a sweep has its own choices
            self._check(None, config)


def same_path(a: str, b: str) -> bool:
    """Whether two paths name the same place (``data.fallback``: is data.root the default data dir?)."""
    return Path(str(a)).expanduser().absolute() == Path(str(b)).expanduser().absolute()


OmegaConf.register_new_resolver("resume_dir", resume_dir, replace=True)
OmegaConf.register_new_resolver("same_path", same_path, replace=True)
