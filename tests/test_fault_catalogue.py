"""Every fault of the catalogue (tests/fault_catalogue.py) run as a user meets it, a real ``python train.py``:
the exit status, one line naming the problem and the fix, no traceback, nothing already written lost.
``bench/faults.py`` renders the same runs as docs/faults.md's table."""

from __future__ import annotations

import pytest

from fault_catalogue import FAULTS, Fault


@pytest.mark.slow  # 32 subprocesses, signals and DDP ranks among them: test_faults.py checks the guards in process
@pytest.mark.parametrize("fault", FAULTS, ids=[fault.name for fault in FAULTS])
def test_the_fault_ends_as_the_catalogue_says(fault: Fault, tmp_path):
    outcome = fault.run(tmp_path)
    assert not fault.check(outcome), f"{fault.check(outcome)}\n{outcome.output[-3000:]}"
