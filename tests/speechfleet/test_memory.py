"""Workers restart themselves with glibc's huge-page tunable: large blocks fault in 2 MB pages."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from speechfleet.memory import HUGE_PAGES_TUNABLE, TRANSPARENT_HUGE_PAGES, with_huge_pages
from speechfleet.redis_server import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[2]


def _huge_pages_possible() -> bool:
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION")) and "[never]" not in TRANSPARENT_HUGE_PAGES.read_text()
    except (ValueError, OSError):
        return False


needs_huge_pages = pytest.mark.skipif(not _huge_pages_possible(), reason="no glibc, or transparent huge pages off")

# a process that restarts itself as a worker does, then fills a 64 MB block malloc maps for it
PROBE = """
import os
from speechfleet.memory import restart_with_huge_pages
print(os.getpid(), flush=True)
restart_with_huge_pages()
block = b"\\x01" * (64 << 20)
huge_kb = next(int(line.split()[1]) for line in open("/proc/self/smaps_rollup") if line.startswith("AnonHugePages"))
print(os.getpid(), os.environ.get("GLIBC_TUNABLES"), huge_kb, flush=True)
"""


def _probe(environ: dict[str, str]) -> tuple[list[str], list[str]]:
    """The pid it started with; its pid, tunables and huge-page kB at the end (a restarted
    process runs the script from its start again: the first line comes twice)."""
    done = subprocess.run([sys.executable, "-c", PROBE], env=environ, cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=True)
    lines = [line.split() for line in done.stdout.splitlines()]
    return lines[0], lines[-1]


@needs_huge_pages
def test_a_restarted_process_keeps_its_pid_and_gets_huge_pages():
    environ = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    before, after = _probe(environ)
    assert before[0] == after[0]  # the same process: a supervisor's pid stays valid
    assert after[1] == f"{HUGE_PAGES_TUNABLE}=1"
    assert int(after[2]) >= 32 * 1024, f"only {after[2]} kB of the 64 MB block is on huge pages"


@needs_huge_pages
def test_a_tunable_set_by_the_operator_is_left_alone():
    environ = {**os.environ, "GLIBC_TUNABLES": f"{HUGE_PAGES_TUNABLE}=0"}
    before, after = _probe(environ)
    assert before[0] == after[0] and after[1] == f"{HUGE_PAGES_TUNABLE}=0"
    assert int(after[2]) == 0  # malloc's blocks stay on small pages, as asked


def test_other_tunables_are_kept():
    environ = with_huge_pages({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "PATH": "/usr/bin"})
    if environ is None:
        pytest.skip("no glibc, or transparent huge pages off")
    assert environ == {"GLIBC_TUNABLES": f"glibc.malloc.arena_max=2:{HUGE_PAGES_TUNABLE}=1", "PATH": "/usr/bin"}
    assert with_huge_pages(environ) is None  # nothing more to add: a restarted process does not restart again


@needs_huge_pages
def test_a_worker_started_without_the_tunable_runs_with_it():
    """``speechfleet worker`` as a supervisor starts it (no tunable in its environment)."""
    redis = EmbeddedRedis().start()
    environ = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"} | {"REDIS_URL": redis.url}
    worker = subprocess.Popen([sys.executable, "-m", "speechfleet.cli", "worker", "--webhooks"], env=environ,
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        wanted = f"GLIBC_TUNABLES={HUGE_PAGES_TUNABLE}=1".encode()
        while wanted not in Path(f"/proc/{worker.pid}/environ").read_bytes().split(b"\0"):
            assert worker.poll() is None, "the worker exited"
            assert time.monotonic() < deadline, "the worker never restarted with the tunable"
            time.sleep(0.1)
    finally:
        worker.terminate()
        worker.wait(30)
        redis.stop()
