"""Give freed memory back to the system.

glibc serves large allocations with mmap and returns them on free, but after the first big
free it raises its mmap threshold (up to 32 MB) and serves later large blocks from the heap,
where a freed block stays with the process: measured, an API that had held ten 24 MB bodies
stayed at 714 MB after they were gone. A fixed threshold keeps every block above it mmapped,
so the process shrinks again once a burst of large requests or inputs has passed (299 MB).
Not lower: at 1 MB every torch activation was mmapped and zero-filled afresh, and speaker
embeddings through the fleet fell from 104 to 83 requests/s (bench/bench_fleet.py).

Fixing the mmap threshold also freezes glibc's trim threshold at 128 kB, where its own dynamic
rule keeps it at twice the mmap threshold: then freeing a request's buffers (a 10 s clip is a
441 kB body and a 640 kB decoded array) handed the top of the heap back at once, and the next
request faulted it in again. Measured (VAD worker, 10 s clips, 32 clients): 180-260 page faults
per request, 2-5 a request with the trim threshold at twice the mmap threshold, as glibc would
have it. What stays with the process is bounded by that: at most 32 MB free at the top of each
malloc arena.

Every mmapped block is faulted in page by page when first touched, and on a virtual machine a
fault is dear. A worker re-executes itself with glibc's ``glibc.malloc.hugetlb=1`` tunable
(read by the loader at start only), which asks for transparent huge pages on what malloc maps:
2 MB faults instead of 4 KB ones. Measured on 2 vCPUs (tiny.en, one thread, the 10-minute
file of bench/bench_stt_packing.py): 2.0 million page faults and 31-33 s of inference in the
worker without it, 0.45 million and 23-26 s with it. A tunable already set either way is left alone,
and a process restarts at most once (``RESTARTED_FROM`` marks it: a loader in secure mode drops
``GLIBC_TUNABLES``, and the restarted process must not try again).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Mapping
from pathlib import Path

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
MMAP_THRESHOLD_BYTES = 16 * 1024 * 1024  # blocks of 16 MB and more: request bodies, long decoded inputs
TRIM_THRESHOLD_BYTES = 2 * MMAP_THRESHOLD_BYTES  # glibc's own rule, which a fixed mmap threshold switches off
HUGE_PAGES_TUNABLE = "glibc.malloc.hugetlb"
#: set by a restart onto huge pages: what GLIBC_TUNABLES was before it ("" when unset)
RESTARTED_FROM = "SPEECHFLEET_GLIBC_TUNABLES_BEFORE"
TRANSPARENT_HUGE_PAGES = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def return_large_blocks() -> bool:
    """Fix glibc's mmap threshold for this process, and its trim threshold at twice that; False
    where there is no glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) \
            and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
    except (OSError, AttributeError):
        return False


def with_huge_pages(environ: Mapping[str, str]) -> dict[str, str] | None:
    """``environ`` with malloc's huge-page tunable added to ``GLIBC_TUNABLES``; None when there is
    nothing to add: the tunable is already there (on or off), this process was restarted for it
    already, this is no glibc, or the kernel has transparent huge pages switched off."""
    if RESTARTED_FROM in environ or HUGE_PAGES_TUNABLE in environ.get("GLIBC_TUNABLES", ""):
        return None
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
    except (ValueError, OSError, AttributeError):  # not glibc, or not Linux
        return None
    try:
        if "[never]" in TRANSPARENT_HUGE_PAGES.read_text():
            return None
    except OSError:
        return None
    before = environ.get("GLIBC_TUNABLES", "")
    tunables = [part for part in before.split(":") if part]
    return {**environ, "GLIBC_TUNABLES": ":".join([*tunables, f"{HUGE_PAGES_TUNABLE}=1"]), RESTARTED_FROM: before}


def as_launched(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without what a restart onto huge pages added: what this process's children
    start with, as they would have had it not restarted."""
    if RESTARTED_FROM not in environ:
        return dict(environ)
    launched = {name: value for name, value in environ.items() if name not in (RESTARTED_FROM, "GLIBC_TUNABLES")}
    if environ[RESTARTED_FROM]:
        launched["GLIBC_TUNABLES"] = environ[RESTARTED_FROM]
    return launched


def restart_with_huge_pages() -> None:
    """Run this process again, the same command, with the huge-page tunable set; returns at once
    when there is nothing to add (the restarted process finds it set)."""
    environ = with_huge_pages(os.environ)
    if environ is None:
        return
    for stream in (sys.stdout, sys.stderr):  # None where the descriptor was closed
        if stream is not None:
            stream.flush()
    os.execve(sys.executable, sys.orig_argv, environ)
