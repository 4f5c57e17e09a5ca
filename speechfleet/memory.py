"""Give freed memory back to the system.

glibc serves large allocations with mmap and returns them on free, but after the first big
free it raises its mmap threshold (up to 32 MB) and serves later large blocks from the heap,
where a freed block stays with the process: measured, an API that had held ten 24 MB bodies
stayed at 714 MB after they were gone. A fixed threshold keeps every block above it mmapped,
so the process shrinks again once a burst of large requests or inputs has passed.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
MMAP_THRESHOLD_BYTES = 1024 * 1024  # blocks of 1 MB and more: audio, bodies, decoded inputs


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
