"""The benchmarks' own bookkeeping: a row scored at an intermediate budget of a longer run is the row of a run
that stopped there (what the long-budget tables of docs/results.md rely on)."""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import reference_dcgan  # noqa: E402  (bench/ on the path first)


def test_reference_scored_at_an_intermediate_budget_equals_a_run_to_that_budget():
    long_run = reference_dcgan.run_budgets("mnist", [3, 6], seed=0, num_samples=100)
    short_run = reference_dcgan.run("mnist", 3, seed=0, num_samples=100)
    assert [row["generator_updates"] for row in long_run] == [3, 6]
    assert long_run[0]["fid"] == short_run["fid"]
    assert long_run[0]["kid_mean"] == short_run["kid_mean"]
    assert long_run[1]["fid"] != short_run["fid"]  # the later budget is scored from later weights


def test_a_row_trained_on_from_a_shorter_run_equals_a_straight_run(tmp_path):
    """``--resume-from``: the 20,000-update rows go on from the 10,000-update runs; scored, they must be the rows
    of runs trained straight to the longer budget (and the time of both parts counted)."""
    import quality

    def rows(steps: int, out: Path, resume_from: int | None = None) -> list[dict]:
        args = argparse.Namespace(
            steps=steps, also_at=[], resume_from=resume_from, score_existing=False, fid_callback=False, num_samples=100
        )
        overrides = ["model=mlp", "logger=csv", "callbacks.sample_grid=null", "trainer.enable_model_summary=false"]
        return quality.run_rows("mlp", overrides, "mnist", 0, args, out)

    straight = rows(6, tmp_path / "straight")[0]
    shorter = rows(4, tmp_path / "resumed")[0]
    # The shorter run's start, moved 1,000 s back: its part of the time must be counted.
    provenance = tmp_path / "resumed" / "mnist" / "mlp_n4_s0" / "provenance.yaml"
    started = provenance.stat().st_mtime - 1000
    os.utime(provenance, (started, started))
    resumed = rows(6, tmp_path / "resumed", resume_from=4)[0]
    assert resumed["generator_updates"] == straight["generator_updates"] == 6
    assert resumed["fid"] == straight["fid"] != shorter["fid"]
    assert resumed["kid_mean"] == straight["kid_mean"]
    assert resumed["train_seconds"] > 1000
    assert "cp -r" in resumed["command"] and "ckpt_path=" in resumed["command"]
