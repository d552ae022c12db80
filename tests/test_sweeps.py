"""Sweeps and clusters: the launcher and sweeper configs compose, and real sweeps run from the command line."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from conftest import CONFIG_DIR

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "model=mlp",
    "trainer.max_steps=2",
    "trainer.log_every_n_steps=1",
    "data.batch_size=16",
    "data.download=false",
    "callbacks.progress_bar=null",
    "trainer.enable_model_summary=false",
    "trainer.limit_val_batches=1",
    "logger=csv",
    "callbacks.sample_grid=null",
    "++callbacks.fid=null",
    "++callbacks.best_fid_checkpoint=null",
]


def compose_with_hydra(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=overrides, return_hydra_config=True)


def test_slurm_launcher_composes_for_multi_node_ddp():
    cfg = compose_with_hydra(
        [
            "hydra/launcher=slurm",
            "accelerator=ddp",
            "trainer.num_nodes=2",
            "trainer.devices=4",
            "hydra.launcher.tasks_per_node=4",
            "hydra.launcher.gpus_per_node=4",
        ]
    )
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 4, 4)
    assert launcher.max_num_timeout > 0 and cfg.trainer.strategy.per_network is True


def test_optuna_search_composes_minimizing_fid():
    cfg = compose_with_hydra(["hparams_search=optuna"])
    assert cfg.optimized_metric == "val/fid" and cfg.hydra.sweeper.direction == "minimize"
    assert cfg.hydra.sweeper._target_ == "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    assert set(cfg.hydra.sweeper.params) == {"optimizer.generator.lr", "optimizer.discriminator.lr", "data.batch_size"}


def sweep(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def last_logged(job: Path, name: str) -> float:
    with open(job / "csv" / "metrics.csv") as f:
        return [float(row[name]) for row in csv.DictReader(f) if row.get(name)][-1]


@pytest.mark.slow
def test_joblib_runs_the_jobs_in_parallel_processes(tmp_path):
    result = sweep(
        [
            "-m",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            "loss=gan,lsgan",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
            "hydra.sweep.subdir=${hydra.job.num}",
            *TINY,
        ],
        cwd=tmp_path,
    )  # job dirs named after all overrides pass 255 chars
    assert "Joblib.Parallel(n_jobs=2" in result.stdout + result.stderr
    jobs = sorted(p for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert [job.name for job in jobs] == ["0", "1"]
    assert all((job / "checkpoints" / "last.ckpt").is_file() for job in jobs)


@pytest.mark.slow
def test_optuna_sweep_of_two_trials_reports_the_best(tmp_path):
    sweep(
        [
            "hparams_search=optuna",
            "hydra.sweeper.n_trials=2",
            "hydra.sweeper.sampler.n_startup_trials=2",
            "optimized_metric=loss/g",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
            *TINY,
        ],
        cwd=tmp_path,
    )
    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    jobs = sorted(p for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert len(jobs) == 2
    # Each trial's value is what train.py returned: the last logged loss/g. The best is the smaller one.
    assert results["best_value"] == pytest.approx(min(last_logged(job, "loss/g") for job in jobs))
    assert set(results["best_params"]) == {
        "optimizer.generator.lr",
        "optimizer.discriminator.lr",
    }  # data.batch_size is fixed by TINY


@pytest.mark.slow
def test_optuna_sweep_minimizes_val_fid(tmp_path):
    # The default objective: FID of 200 samples after one short epoch (2 generator updates), per trial.
    fid_on = [arg for arg in TINY if "fid" not in arg] + [
        "trainer.limit_train_batches=2",
        "++callbacks.fid.num_samples=200",
    ]
    sweep(
        [
            "hparams_search=optuna",
            "hydra.sweeper.n_trials=2",
            "hydra.sweeper.sampler.n_startup_trials=2",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
            *fid_on,
        ],
        cwd=tmp_path,
    )
    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    jobs = sorted(p for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert results["best_value"] == pytest.approx(min(last_logged(job, "val/fid") for job in jobs))
