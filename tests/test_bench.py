"""The benchmarks' own bookkeeping: a row scored at an intermediate budget of a longer run is the row of a run
that stopped there (what the long-budget tables of docs/results.md rely on)."""

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
