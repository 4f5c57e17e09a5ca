"""Give freed memory back to the system.

glibc serves large allocations with mmap and returns them on free, but after the first big
free it raises its mmap threshold (up to 32 MB) and serves later large blocks from the heap,
where a freed block stays with the process: measured, an API that had held ten 24 MB bodies
stayed at 714 MB after they were gone. A fixed threshold keeps every block above it mmapped,
so the process shrinks again once a burst of large requests or inputs has passed (299 MB).
Not lower: at 1 MB every torch activation was mmapped and zero-filled afresh, and speaker
embeddings through the fleet fell from 104 to 83 requests/s (bench/bench_fleet.py).
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
MMAP_THRESHOLD_BYTES = 16 * 1024 * 1024  # blocks of 16 MB and more: request bodies, long decoded inputs


def return_large_blocks() -> bool:
    """Fix glibc's mmap threshold for this process; False where there is no glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):
        return False
