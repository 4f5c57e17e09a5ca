"""Workers restart themselves with glibc's huge-page tunable: malloc asks for huge pages on what it maps."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from speechfleet.memory import HUGE_PAGES_TUNABLE, RESTARTED_FROM, as_launched, with_huge_pages
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
