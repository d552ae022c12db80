"""Errors at the edges: what goes wrong while Hydra composes the config reaches the user as one line that names
the file and line where it applies, not a traceback through Hydra and OmegaConf. ``HYDRA_FULL_ERROR=1`` still
gives the whole traceback.

Hydra reports an exception of the app (or of its composition) in ``hydra._internal.utils.run_and_report``:
compact for its own exceptions (several lines), a trimmed traceback for everything else (a broken YAML file:
29 frames). ``report_in_one_line()`` wraps that function: an error of the user's config or data becomes
``error: <file>:<line>: <what>``; anything else (a bug) keeps Hydra's report and its traceback.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hydra.errors import HydraException, InstantiationException, MissingConfigException
from omegaconf.errors import OmegaConfBaseException

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def _flat(text: str) -> str:
    """Several lines as one: ``a\\n\\nOptions:\\n\\tx\\n\\ty`` -> ``a; Options: x, y``."""
    lines = [
        line.strip()
        for line in str(text).splitlines()
        if line.strip() and not line.strip().startswith(("full_key:", "object_type=", "reference_type="))
    ]
    out = ""
    for line in lines:
        if not out:
            out = line
        elif out.endswith(":"):
            out += " " + line
        elif re.fullmatch(r"[\w./-]+", line) and re.search(r"(:|[\w./-])$", out) and (":" in out.rsplit(";", 1)[-1]):
            out += ", " + line  # one of a list of options
        else:
            out += "; " + line
    return out.replace(": ,", ":")


def _find_in_conf(needle: str) -> str | None:
    """``file:line`` of the first YAML line under conf/ (and any hydra.searchpath) holding ``needle``."""
    dirs = [CONF_DIR]
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            dirs += [
                Path(s.path)
                for s in HydraConfig.get().runtime.config_sources
                if s.schema == "file" and Path(s.path) != CONF_DIR
            ]
    except Exception:  # noqa: BLE001  (only a better message is at stake)
        pass
    for path in sorted(path for directory in dirs for path in directory.rglob("*.yaml")):
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if needle in line.split("#", 1)[0]:
                return f"{path}:{number}"
    return None


def _yaml_error(err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    problem = (
        " ".join(str(part) for part in (getattr(err, "context", None), getattr(err, "problem", None)) if part)
        or str(err).splitlines()[0]
    )
    where = f"{mark.name}:{mark.line + 1}: " if mark is not None else ""
    return f"{where}invalid YAML ({problem}); fix the file's syntax"


def _omegaconf_error(err: OmegaConfBaseException) -> str:
    message = str(err).splitlines()[0] if str(err) else type(err).__name__
    key = getattr(err, "full_key", None)
    where = None
    interpolation = re.search(r"\$\{[^}]*\}", str(err))
    missing = re.search(r"Interpolation key '([^']+)' not found", str(err))
    if missing:
        where = _find_in_conf("${" + missing.group(1)) or _find_in_conf(missing.group(1))
    elif interpolation:
        where = _find_in_conf(interpolation.group(0))
    prefix = f"{where}: " if where else ""
    suffix = f" (key {key})" if key else ""
    return f"{prefix}{message}{suffix}"


def one_line(err: BaseException) -> str | None:
    """The one line a user gets for ``err``, or None when it is not the user's config or data (a bug)."""
    seen = set()
    while err is not None and id(err) not in seen:  # the first cause that says what is wrong
        seen.add(id(err))
        if isinstance(err, yaml.YAMLError):
            return _yaml_error(err)
        if isinstance(err, OmegaConfBaseException):
            return _omegaconf_error(err)
        if isinstance(err, InstantiationException):
            inner = err
            while isinstance(inner.__cause__, InstantiationException):  # a network built inside the model
                inner = inner.__cause__
            if isinstance(inner.__cause__, ValueError):  # the class's own check of its arguments: a user error
                target = re.search(r"target '([^']+)'", str(inner))
                return f"{inner.__cause__}" + (f" (building {target.group(1)})" if target else "")
            return None
        if isinstance(err, MissingConfigException):
            return _flat(str(err).split("Config search path")[0])
        if isinstance(err, HydraException):
            cause = err.__cause__ or err.__context__
            if cause is not None and one_line(cause) is not None and not str(err).strip():
                return one_line(cause)
            text = _flat(str(err))
            if isinstance(cause, yaml.YAMLError):
                return _yaml_error(cause)
            if isinstance(cause, OmegaConfBaseException) and str(cause):
                text += "; " + _flat(str(cause))
            return text
        err = err.__cause__ or err.__context__
    return None


def _full_error() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def _wrap(original: Callable[[Callable[[], Any]], Any]) -> Callable[[Callable[[], Any]], Any]:
    def run_and_report(func: Callable[[], Any]) -> Any:
        if _full_error():
            return original(func)
        try:
            return func()
        except Exception as err:  # noqa: BLE001  (what Hydra's own run_and_report catches)
            line = one_line(err)
            if line is None:

                def reraise(error: Exception = err) -> Any:
                    raise error

                return original(reraise)  # a bug: Hydra's report, with its traceback
            sys.stderr.write(f"error: {line}\n")
            sys.exit(1)

    run_and_report.ganlab_wrapped = True  # type: ignore[attr-defined]
    return run_and_report


def report_in_one_line() -> None:
    """Make Hydra report composition errors in one line (idempotent)."""
    import hydra._internal.utils as hydra_utils

    if not getattr(hydra_utils.run_and_report, "ganlab_wrapped", False):
        hydra_utils.run_and_report = _wrap(hydra_utils.run_and_report)
