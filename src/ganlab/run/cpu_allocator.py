"""Keep a CPU training step's freed memory in the process instead of handing it back to the OS every step.

A convolutional GAN step on a CPU allocates and frees activations of megabytes each (the default D's first
feature maps at batch 100: 100 x 32 x 28 x 28 floats, 10 MB). glibc's malloc serves blocks above its mmap
threshold with fresh ``mmap`` calls and returns free memory at the top of the heap to the OS above its trim
threshold. Both thresholds adapt while the process runs, and in a Lightning training process they settled where
each step faulted its activations' pages in again: 1.3-1.5 million minor page faults and 2.5-2.7 s of system
time over 60 updates of the default DCGAN, against 0.2 million and 0.6 s for a plain loop of the same math
(docs/performance.md). Fixed thresholds (glibc's ``mallopt``) keep that memory: the faults fall to the plain
loop's. Peak memory does not grow; freed memory stays reserved for the next step.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20  # the largest glibc accepts on 64-bit: blocks below it come from the heap
TRIM_THRESHOLD = 2**30  # free memory at the heap's top up to this stays in the process

_applied = False


def keep_freed_memory() -> bool:
    """Fix glibc's mmap and trim thresholds for this process (once). Whether they are set: False off Linux and
    on C libraries other than glibc (musl), where nothing is changed."""
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018  (glibc only: musl has no mallopt to speak of)
    except (OSError, AttributeError):
        return False
    _applied = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    return _applied
