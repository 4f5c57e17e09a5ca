"""A daemon thread that calls a function every few seconds until stopped (heartbeats, sweeps)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import redis
from loguru import logger


class Periodic:
    def __init__(self, name: str, interval_s: float, action: Callable[[], object]):
        self.name = name
        self.interval_s = interval_s
        self._action = action
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.interval_s + 1)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._action()
            except redis.RedisError as exc:  # Redis away for a moment: try again next round
                logger.warning("{} failed: {}", self.name, exc)
            except Exception:  # a bug or a broker error must not end the loop for the worker's lifetime
                logger.exception("{} failed", self.name)
