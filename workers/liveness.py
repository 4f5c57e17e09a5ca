"""Which models have a live consumer right now.

Each worker process refreshes, for every model it serves, its own member in a sorted set
scored by the time it was last seen. The API counts members seen within the TTL: one Redis
call, and a SIGKILLed worker drops out by itself after ``heartbeat_ttl_s``.
"""

from __future__ import annotations

import threading
import time

import redis
from loguru import logger

KEY_PREFIX = "speechfleet:consumers:"


def consumers_key(model_name: str) -> str:
    return KEY_PREFIX + model_name


class Heartbeat:
    def __init__(self, client: redis.Redis, worker_id: str, models: list[str], interval_s: float, ttl_s: float):
        self._client = client
        self._worker_id = worker_id
        self._models = models
        self._interval_s = interval_s
        self._ttl_s = ttl_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> None:
        self.beat()
        self._thread.start()

    def beat(self) -> None:
        now = time.time()
        with self._client.pipeline() as pipe:
            for model in self._models:
                key = consumers_key(model)
                pipe.zadd(key, {self._worker_id: now})
                pipe.zremrangebyscore(key, "-inf", now - self._ttl_s)  # forget the dead
            pipe.execute()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self._interval_s + 1)
        try:
            with self._client.pipeline() as pipe:
                for model in self._models:
                    pipe.zrem(consumers_key(model), self._worker_id)
                pipe.execute()
        except redis.RedisError:
            pass  # the entry expires by itself

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.beat()
            except redis.RedisError as exc:
                logger.warning("heartbeat failed: {}", exc)
