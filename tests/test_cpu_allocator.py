"""The CPU allocator setting (ganlab/run/cpu_allocator.py): a training step's freed activations stay in the process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ganlab.run.cpu_allocator import keep_freed_memory

PROBE = Path(__file__).resolve().parent / "page_faults_probe.py"
glibc_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")


@glibc_only
def test_keep_freed_memory_sets_glibcs_thresholds_once():
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True  # idempotent


@glibc_only
@pytest.mark.slow  # two fresh processes of 20 default updates at batch 100
def test_cpu_training_stops_faulting_its_activations_in_every_step(tmp_path):
    """20 updates of the default GAN at batch 100 after 10 warm-up ones, in fresh processes: with glibc's own
    adaptive thresholds each step faults hundreds of thousands of pages back in (measured 300-480 thousand); with
    the module's fixed ones (on_fit_start on a CPU) a few thousand."""

    def minor_faults(mode: str) -> int:
        out = subprocess.run(
            [sys.executable, str(PROBE), mode, str(tmp_path / mode)],
            capture_output=True,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        assert out.returncode == 0, out.stderr[-2000:]
        return int(out.stdout.strip().splitlines()[-1])

    kept, default = minor_faults("keep"), minor_faults("off")
    assert kept * 10 < default, (kept, default)
