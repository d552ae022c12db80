"""What a run dir records about how it was made: the composed config, the code's git commit, the package versions."""

from __future__ import annotations

import datetime
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from lightning.fabric.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf

PACKAGES = (
    "ganlab",
    "torch",
    "torchvision",
    "lightning",
    "hydra-core",
    "omegaconf",
    "torchmetrics",
    "numpy",
    "tensorboard",
)
RECORD_FILE = "provenance.yaml"


def git_state(directory: Path) -> dict[str, Any] | None:
    """The commit of the git checkout holding ``directory`` and whether files differ from it; None outside git."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=directory, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


@rank_zero_only  # one record per run, not one per DDP process
def record_run(cfg: DictConfig, output_dir: str | Path) -> Path | None:
    """Append one YAML document for this start of the run to ``<output_dir>/provenance.yaml``.

    Appended, not overwritten: a resumed run keeps the record of every start (``yaml.safe_load_all``).
    """
    record = {
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "ckpt_path": cfg.get("ckpt_path"),
        "git": git_state(Path(__file__).parent),
        "versions": package_versions(),
        "host": platform.node(),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    path = Path(output_dir) / RECORD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write("---\n")
        yaml.safe_dump(record, f, sort_keys=False)
    return path
