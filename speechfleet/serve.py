"""All-in-one mode: a private Redis (unless REDIS_URL is set), one worker process per
configured model, and the API; a worker that dies is started again. Ctrl-C / SIGTERM stops
the API first (no new jobs), then the workers (each finishes the batch in flight within
``SPEECHFLEET_SHUTDOWN_GRACE_S`` and hands the rest of what it holds back to its queue), then
Redis. The private Redis is ephemeral unless ``data_dir`` is given: then it keeps an
append-only file there, and a restart picks up every accepted job where it was.

Cores: each worker is told how many cores it may spend (``SPEECHFLEET_WORKER_CORES``, which
it turns into instances and threads, ``workers.parallelism``) by ``worker_cores``: an equal
share of the cores this process may run on, but never fewer than ``min(cores, 4)``. Shares
overlap on purpose: a worker uses CPU only while its model has work, so on a small machine
each busy model may use all of it (the default config's seven models on 2 cores: 2 each)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from loguru import logger

from speechfleet.redis_server import EmbeddedRedis
from speechmodels import ModelConfig
from workers.parallelism import available_cores

SHARE_FLOOR = 4  # cores a worker may always use (when the machine has them), whatever the number of models


def worker_cores(cores: int, models: int) -> int:
    """The cores each of ``models`` workers may spend on a machine (or cpuset) of ``cores``."""
    return max(min(cores, SHARE_FLOOR), cores // max(1, models))


class Fleet:
    def __init__(self, config_path: Path, configs: list[ModelConfig], host: str, port: int, device: str | None,
                 data_dir: Path | None = None, fsync: str = "everysec"):
        from jobcontract.settings import WorkerSettings

        self.data_dir = data_dir
        self.fsync = fsync
        # a worker's grace for its batch in flight, plus time to unload and exit
        self.worker_stop_s = WorkerSettings().shutdown_grace_s + 15
        self.config_path = config_path
        self.configs = configs
        self.host = host
        self.port = port
        self.device = device
        self.redis: EmbeddedRedis | None = None
        self.workers: dict[str, subprocess.Popen] = {}
        self.api: subprocess.Popen | None = None
        self._stopping = threading.Event()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: self._stopping.set())
        signal.signal(signal.SIGINT, lambda *_: self._stopping.set())
        env = dict(os.environ, SPEECHFLEET_CONFIG=str(self.config_path))
        env.setdefault("SPEECHFLEET_WORKER_CORES", str(worker_cores(available_cores(), len(self.configs))))
        logger.info("{} core(s) here, {} model(s): each worker may spend {} (SPEECHFLEET_WORKER_CORES)",
                    available_cores(), len(self.configs), env["SPEECHFLEET_WORKER_CORES"])
        try:
            if not env.get("REDIS_URL"):
                self.redis = EmbeddedRedis(data_dir=self.data_dir, fsync=self.fsync).start()
                env["REDIS_URL"] = self.redis.url
                if self.data_dir is not None:
                    logger.info("started a private Redis at {}, append-only file in {} (appendfsync {})",
                                self.redis.url, self.data_dir, self.fsync)
                else:
                    logger.info("started a private Redis at {} (ephemeral: --data-dir DIR keeps jobs across "
                                "restarts)", self.redis.url)
            elif self.data_dir is not None:
                logger.warning("REDIS_URL is set: --data-dir is ignored (that Redis's own persistence applies)")
            for config in self.configs:
                self.workers[config.name] = self._start_worker(config, env)
            self.workers["webhooks"] = self._spawn(["worker", "--webhooks"], env)
            self.api = self._spawn(["api", "--host", self.host, "--port", str(self.port)], env)
            logger.info("speechfleet on http://{}:{} (GET /ready turns 200 once every model has a worker)",
                        self.host, self.port)
            return self._supervise(env)
        finally:
            self.shutdown()

    def _supervise(self, env: dict[str, str]) -> int:
        while not self._stopping.wait(0.5):
            if self.api and self.api.poll() is not None:
                logger.error("the API exited with {}; stopping", self.api.returncode)
                return self.api.returncode or 1
            for name, worker in list(self.workers.items()):
                if worker.poll() is not None:
                    logger.warning("worker for {} exited with {}; starting another", name, worker.returncode)
                    time.sleep(1)  # no tight restart loop when a model cannot load
                    config = next((c for c in self.configs if c.name == name), None)
                    self.workers[name] = (self._start_worker(config, env) if config
                                          else self._spawn(["worker", "--webhooks"], env))
        return 0

    def _start_worker(self, config: ModelConfig, env: dict[str, str]) -> subprocess.Popen:
        args = ["worker", "--models", config.name]
        if self.device:
            args += ["--device", self.device]
        return self._spawn(args, env)

    @staticmethod
    def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen:
        # own process group: the terminal's Ctrl-C reaches only us, and we stop children in order
        return subprocess.Popen([sys.executable, "-m", "speechfleet.cli", *args], env=env, start_new_session=True)

    def shutdown(self) -> None:
        # the API first (no new jobs), then the workers (they finish what they hold), then Redis
        for group, wait_s in (([self.api] if self.api else [], 20), (list(self.workers.values()), self.worker_stop_s)):
            for process in group:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + wait_s
            for process in group:
                try:
                    process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
        if self.redis:
            self.redis.stop()
            self.redis = None
