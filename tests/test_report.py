"""Comparing the jobs of a real sweep: TensorBoard's HPARAMS data (read back with TensorBoard's own reader and
hparams plugin) and ``report.py``'s table, CSV, Markdown, FID plot and sample mosaic."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
# 4 jobs of 6 generator updates in 2 epochs of 3 batches, each validated with FID on 200 samples.
SWEEP = [
    "-m",
    "loss=gan,lsgan",
    "optimizer.generator.lr=2e-4,1e-3",
    "model=mlp",
    "trainer.max_steps=6",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=2",
    "trainer.log_every_n_steps=1",
    "data.batch_size=16",
    "data.download=false",
    "callbacks.fid.num_samples=200",
    "callbacks.progress_bar=null",
    "trainer.enable_model_summary=false",
]


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sweep")
    result = subprocess.run(
        [sys.executable, str(REPO / "train.py"), *SWEEP, f"hydra.sweep.dir={root / 'sweep'}"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return root / "sweep"


def test_hparams_tab_lists_every_job_with_its_hyperparameters_and_val_fid(sweep_dir):
    from tensorboard import context
    from tensorboard.backend.event_processing.data_provider import MultiplexerDataProvider
    from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import api_pb2, backend_context, list_session_groups, metadata

    multiplexer = EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(sweep_dir))
    multiplexer.Reload()

    # The summaries as written: a session start per job, with its own values, and the metric names declared.
    content = multiplexer.PluginRunToTagToContent(metadata.PLUGIN_NAME)
    assert sorted(content) == [f"{job}/tensorboard" for job in range(4)]
    starts = {
        run: metadata.parse_session_start_info_plugin_data(tags[metadata.SESSION_START_INFO_TAG]).hparams
        for run, tags in content.items()
    }
    assert {(h["loss"].string_value, h["lr_g"].number_value) for h in starts.values()} == {
        ("gan", 2e-4),
        ("gan", 1e-3),
        ("lsgan", 2e-4),
        ("lsgan", 1e-3),
    }
    assert all(
        h["model"].string_value == "mlp"
        and h["batch_size"].number_value == 16
        and h["betas_d"].string_value == "0.5,0.999"
        for h in starts.values()
    )
    experiment = metadata.parse_experiment_plugin_data(content["0/tensorboard"][metadata.EXPERIMENT_TAG])
    assert {"val/fid", "val/best_fid", "val/kid", "val/coverage_kl"} <= {m.name.tag for m in experiment.metric_infos}

    # What the HPARAMS tab shows: TensorBoard's hparams backend lists 4 session groups, each with its val/fid.
    tb_context = base_plugin.TBContext(
        logdir=str(sweep_dir),
        multiplexer=multiplexer,
        data_provider=MultiplexerDataProvider(multiplexer, str(sweep_dir)),
    )
    request = api_pb2.ListSessionGroupsRequest(
        start_index=0, slice_size=100, allowed_statuses=[api_pb2.STATUS_UNKNOWN, api_pb2.STATUS_SUCCESS]
    )
    groups = list_session_groups.Handler(
        context.RequestContext(), backend_context.Context(tb_context), "", request
    ).run()
    assert groups.total_size == 4
    for group in groups.session_groups:
        metrics = {m.name.tag: m.value for m in group.metric_values}
        assert metrics["val/fid"] > 0 and metrics["val/best_fid"] <= metrics["val/fid"], metrics
        assert group.hparams["loss"].string_value in ("gan", "lsgan")


def test_report_over_a_sweep_prints_the_table_and_writes_csv_markdown_plot_and_mosaic(sweep_dir, tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(sweep_dir, sweep)
    failed = sweep / "4"  # a job that crashed: its result.json says so, and it has no metrics
    (failed / ".hydra").mkdir(parents=True)
    shutil.copy(sweep / "0" / ".hydra" / "overrides.yaml", failed / ".hydra" / "overrides.yaml")
    (failed / "result.json").write_text(
        json.dumps({"status": "failed", "wall_time_s": 1.0, "error": "RuntimeError: boom"})
    )

    result = subprocess.run(
        [sys.executable, str(REPO / "report.py"), str(sweep), "--sort", "best val/fid"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    header = lines[0].split()
    assert header[:3] == ["job", "loss", "optimizer.generator.lr"]
    jobs = [line.split()[0] for line in lines[2:7]]
    assert sorted(jobs) == ["0", "1", "2", "3", "4"] and jobs[-1] == "4"  # the failed job, without a val/fid, last
    assert "**FAILED**" in lines[6] and all("completed" in line for line in lines[2:6])

    with open(sweep / "report.csv") as f:
        rows = list(csv.DictReader(f))
    best = [float(row["best val/fid"]) for row in rows[:4]]
    assert best == sorted(best)  # sorted by the chosen metric
    assert all(float(row["best val/fid"]) <= float(row["val/fid"]) for row in rows[:4])
    assert [row["updates"] for row in rows[:4]] == ["6"] * 4 and rows[4]["status"] == "failed"
    assert (
        (sweep / "report.md").read_text().startswith("| job | loss | optimizer.generator.lr | val/fid | best val/fid |")
    )
    plot, mosaic = Image.open(sweep / "report_fid.png"), Image.open(sweep / "report_samples.png")
    assert plot.width >= 600 and mosaic.width > 2 * 200 and mosaic.height > 2 * 200  # 4 grids in 2 x 2


@pytest.mark.parametrize("matplotlib_installed", [True, False])
def test_fid_plot_draws_with_or_without_matplotlib(tmp_path, monkeypatch, matplotlib_installed):
    from ganlab.report import Job, plot_fid

    if not matplotlib_installed:
        monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib then raises ImportError
    else:
        pytest.importorskip("matplotlib")
    jobs = [Job(tmp_path / str(i), curves={"val/fid": [(99, 300.0 - 50 * i), (199, 200.0 - 50 * i)]}) for i in range(3)]
    path = plot_fid(jobs, ["a", "b", "c"], tmp_path / "fid.png")
    assert Image.open(path).width >= 600
    assert plot_fid([Job(tmp_path)], ["empty"], tmp_path / "none.png") is None
