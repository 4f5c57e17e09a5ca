"""Workers restart themselves with glibc's huge-page tunable: malloc asks for huge pages on what it
maps. API and workers fix malloc's mmap and trim thresholds: a request's buffers are neither
kept forever nor faulted in afresh by every request."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from speechfleet.memory import (
    HUGE_PAGES_TUNABLE,
    M_MMAP_THRESHOLD,
    MMAP_THRESHOLD_BYTES,
    RESTARTED_FROM,
    as_launched,
    with_huge_pages,
)
from speechfleet.redis_server import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[2]


# what a worker checks before it restarts (glibc, transparent huge pages not "never")
needs_huge_pages = pytest.mark.skipif(with_huge_pages({}) is None, reason="no glibc, or transparent huge pages off")

# a process that restarts itself as a worker does, then has malloc map a 64 MB block for it; the
# mapping's VmFlags say whether malloc advised huge pages for it ("hg"), whatever the kernel's mode
PROBE = """
import os, re
from speechfleet.memory import restart_with_huge_pages
print(os.getpid(), flush=True)
restart_with_huge_pages()
block = b"\\x01" * (64 << 20)
address, advised, inside = id(block), None, False
for line in open("/proc/self/smaps"):
    span = re.match(r"([0-9a-f]+)-([0-9a-f]+) ", line)
    if span:
        inside = int(span[1], 16) <= address < int(span[2], 16)
    elif inside and line.startswith("VmFlags:"):
        advised = "hg" in line.split()[1:]
print(os.getpid(), os.environ.get("GLIBC_TUNABLES"), advised, flush=True)
"""


def _probe(environ: dict[str, str]) -> tuple[list[str], list[str]]:
    """The pid it started with; its pid, tunables and whether the block is advised at the end (a
    restarted process runs the script from its start again: the first line comes twice)."""
    done = subprocess.run([sys.executable, "-c", PROBE], env=environ, cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=True)
    lines = [line.split() for line in done.stdout.splitlines()]
    return lines[0], lines[-1]


def _without_tunables() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", RESTARTED_FROM)}


@needs_huge_pages
def test_a_restarted_process_keeps_its_pid_and_maps_large_blocks_on_huge_pages():
    before, after = _probe(_without_tunables())
    assert before[0] == after[0]  # the same process: a supervisor's pid stays valid
    assert after[1:] == [f"{HUGE_PAGES_TUNABLE}=1", "True"]


@needs_huge_pages
def test_a_tunable_set_by_the_operator_is_left_alone():
    before, after = _probe({**_without_tunables(), "GLIBC_TUNABLES": f"{HUGE_PAGES_TUNABLE}=0"})
    assert before[0] == after[0]
    assert after[1:] == [f"{HUGE_PAGES_TUNABLE}=0", "False"]  # malloc advised nothing, as asked


@needs_huge_pages
def test_other_tunables_are_kept_and_a_process_restarts_once():
    environ = with_huge_pages({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "PATH": "/usr/bin"})
    assert environ["GLIBC_TUNABLES"] == f"glibc.malloc.arena_max=2:{HUGE_PAGES_TUNABLE}=1"
    assert with_huge_pages(environ) is None
    # a loader in secure mode drops GLIBC_TUNABLES: the mark alone keeps a second restart away
    assert with_huge_pages({k: v for k, v in environ.items() if k != "GLIBC_TUNABLES"}) is None
    # what the restarted process's children get: the environment as it was before the restart
    assert as_launched(environ) == {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "PATH": "/usr/bin"}
    assert as_launched(with_huge_pages({"PATH": "/usr/bin"})) == {"PATH": "/usr/bin"}


@needs_huge_pages
def test_a_worker_started_without_the_tunable_runs_with_it():
    """``speechfleet worker`` as a supervisor starts it (no tunable in its environment)."""
    redis = EmbeddedRedis().start()
    worker = subprocess.Popen([sys.executable, "-m", "speechfleet.cli", "worker", "--webhooks"],
                              env=_without_tunables() | {"REDIS_URL": redis.url}, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        wanted = f"GLIBC_TUNABLES={HUGE_PAGES_TUNABLE}=1".encode()
        while wanted not in Path(f"/proc/{worker.pid}/environ").read_bytes().split(b"\0"):
            assert worker.poll() is None, "the worker exited"
            assert time.monotonic() < deadline, "the worker never restarted with the tunable"
            time.sleep(0.1)
    finally:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)
        redis.stop()


# a process that serves "requests" of a 441 kB body and a 640 kB decoded array (a 10 s clip's
# sizes), each made, written and freed, and prints the page faults the last 50 of them took
FAULTS_PER_REQUEST = """
import ctypes, ctypes.util, resource, sys
from speechfleet import memory
if sys.argv[1] == "return_large_blocks":
    assert memory.return_large_blocks()
else:  # what the API and workers did before: the mmap threshold fixed, nothing else
    assert ctypes.CDLL(ctypes.util.find_library("c")).mallopt(memory.M_MMAP_THRESHOLD, memory.MMAP_THRESHOLD_BYTES)
def request():
    body = b"\\x01" * 441_000
    decoded = bytes(body) + b"\\x02" * 640_000
    return len(decoded)
for _ in range(10):
    request()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    request()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 50)
"""


def _faults_per_request(setting: str) -> float:
    done = subprocess.run([sys.executable, "-c", FAULTS_PER_REQUEST, setting], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True, env=_without_tunables())
    return float(done.stdout)


@pytest.mark.skipif(not os.confstr("CS_GNU_LIBC_VERSION"), reason="no glibc")
def test_buffers_freed_between_requests_are_not_faulted_in_again():
    assert (M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == (-3, 16 << 20)  # what the control below sets
    # the control: with the mmap threshold alone fixed, each request's pages are handed back and
    # faulted in again (some 260 pages of 4 kB a request; fewer where huge pages back the heap)
    assert _faults_per_request("mmap_threshold_only") > 20
    assert _faults_per_request("return_large_blocks") < 5
