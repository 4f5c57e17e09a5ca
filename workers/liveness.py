"""Which models have a live consumer right now.

Each worker process refreshes, for every model it serves, its own member in a sorted set
scored by the time it was last seen. The API counts members seen within the TTL: one Redis
call, and a SIGKILLed worker drops out by itself after ``heartbeat_ttl_s``.
"""

from __future__ import annotations

import json
import time

import redis

from jobcontract.keys import card_key, consumers_key
from workers.periodic import Periodic


def publish_card(client: redis.Redis, model_name: str, languages: dict[str, list[str]], voices: list[str]) -> None:
    client.set(card_key(model_name), json.dumps({"languages": languages, "voices": voices}))


class Heartbeat:
    def __init__(self, client: redis.Redis, worker_id: str, models: list[str], interval_s: float, ttl_s: float):
        self._client = client
        self._worker_id = worker_id
        self._models = models
        self._ttl_s = ttl_s
        self._loop = Periodic("heartbeat", interval_s, self.beat)

    def start(self) -> None:
        self.beat()
        self._loop.start()

    def beat(self) -> None:
        now = time.time()
        with self._client.pipeline() as pipe:
            for model in self._models:
                key = consumers_key(model)
                pipe.zadd(key, {self._worker_id: now})
                pipe.zremrangebyscore(key, "-inf", now - self._ttl_s)  # forget the dead
            pipe.execute()

    def stop(self) -> None:
        self._loop.stop()
        try:
            with self._client.pipeline() as pipe:
                for model in self._models:
                    pipe.zrem(consumers_key(model), self._worker_id)
                pipe.execute()
        except redis.RedisError:
            pass  # the entry expires by itself
