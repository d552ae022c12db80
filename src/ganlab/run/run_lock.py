"""One run at a time in a run dir: two runs started on the same dir (a resume started twice, a job requeued while
the first copy still runs) would interleave their checkpoints and logs.

The lock is an ``flock`` on ``<run dir>/.lock``, which holds the owner's pid and host. The kernel drops it when
the owner dies, however it dies (SIGKILL included), so a killed run never leaves a stale lock behind and its
resume starts at once.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ganlab.run.checkpoints import AtomicCheckpointIO

LOCK_NAME = ".lock"


class RunDirBusy(RuntimeError):
    """Another live process holds the run dir."""


def _is_secondary_rank() -> bool:
    """A DDP rank that rank 0 started into rank 0's own run dir (Lightning sets these for it)."""
    return int(os.environ.get("LOCAL_RANK", 0)) > 0 or int(os.environ.get("NODE_RANK", 0)) > 0


@contextmanager
def hold_run_dir(run_dir: str | Path) -> Iterator[None]:
    """Hold ``run_dir`` for the duration; raise RunDirBusy (naming the other process) when it is held."""
    if _is_secondary_rank():
        yield
        return
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            raise RunDirBusy(
                f"{run_dir} is in use by {owner}; wait for it to end (or stop it), or start this run in another "
                f"dir: hydra.run.dir=<dir>"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(
            fd, f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0
        )
        AtomicCheckpointIO.remove_stale_temporaries(run_dir / "checkpoints")
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays (removing it would race a process about to lock it)
