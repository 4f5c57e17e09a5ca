"""The workers' side of the fleet metrics (layout in ``jobcontract.metrics``)."""

from __future__ import annotations

import math
import queue
import threading
from collections import Counter, defaultdict
from collections.abc import Callable

import redis
from loguru import logger

from jobcontract.metrics import HISTOGRAMS, count, observe


class _Tally:
    """Stands in for a pipeline while observations are gathered: increments to the same field
    add up, so a burst of batches and jobs is one pipeline of a few HINCRBYs."""

    def __init__(self):
        self.ints: Counter = Counter()
        self.floats: defaultdict = defaultdict(float)

    def hincrby(self, key: str, field: str, amount: int = 1) -> None:
        self.ints[(key, field)] += amount

    def hincrbyfloat(self, key: str, field: str, amount: float) -> None:
        self.floats[(key, field)] += amount

    def send(self, pipe) -> None:
        for (key, field), amount in self.ints.items():
            pipe.hincrby(key, field, amount)
        for (key, field), amount in self.floats.items():
            pipe.hincrbyfloat(key, field, amount)


class WorkerMetrics:
    """``deferred``: observations go to Redis from a thread of their own (a batching thread or a
    step's task thread never waits on a metrics round trip); otherwise each call writes at once."""

    def __init__(self, client: redis.Redis, deferred: bool = False):
        self._client = client
        self._deferred = deferred
        self._pending: queue.SimpleQueue[Callable | threading.Event] = queue.SimpleQueue()
        self._sender: threading.Thread | None = None
        self._starting = threading.Lock()

    def batch(self, model: str, size: int) -> None:
        self._record(lambda pipe: observe(pipe, "batch_size", model, size))

    def observations(self, model: str, observations) -> None:
        """A model family's own measurements (``SpeechModel.observe``), for the histograms the
        fleet knows; other names are ignored."""
        def add(pipe) -> None:
            for name, values in observations.items():
                if name in HISTOGRAMS:
                    for value in values:
                        observe(pipe, name, model, value)
        self._record(add)

    def job(self, model: str, outcome: str | None, queue_wait_s: float | None = None, inference_s: float | None = None,
            real_time_factor: float | None = None) -> None:
        """A job's end (``outcome``; None for a part of a job, which is timed but not counted)."""
        def add(pipe) -> None:
            if outcome is not None:
                count(pipe, "jobs", model, outcome)
            for name, value in (("queue_wait_seconds", queue_wait_s), ("inference_seconds", inference_s),
                                ("real_time_factor", real_time_factor)):
                if value is not None and math.isfinite(value):
                    observe(pipe, name, model, value)
        self._record(add)

    def webhook(self, outcome: str) -> None:
        self._record(lambda pipe: count(pipe, "webhook_deliveries", outcome))

    def flush(self, timeout: float = 2.0) -> None:
        """Wait (a while) until what was recorded so far is written (a worker's shutdown)."""
        if self._sender is None:
            return
        done = threading.Event()
        self._pending.put(done)
        done.wait(timeout)

    def _record(self, add: Callable) -> None:
        if not self._deferred:
            with self._client.pipeline(transaction=False) as pipe:
                add(pipe)
                pipe.execute()
            return
        if self._sender is None:
            with self._starting:
                if self._sender is None:
                    self._sender = threading.Thread(target=self._send, daemon=True, name="fleet-metrics")
                    self._sender.start()
        self._pending.put(add)

    def _send(self) -> None:
        while True:
            waiting = [self._pending.get()]
            while True:  # whatever queued up meanwhile goes in the same pipeline
                try:
                    waiting.append(self._pending.get_nowait())
                except queue.Empty:
                    break
            tally, flushed = _Tally(), []
            for add in waiting:
                if isinstance(add, threading.Event):  # a flush waiting for what came before it
                    flushed.append(add)
                else:
                    add(tally)
            try:
                with self._client.pipeline(transaction=False) as pipe:
                    tally.send(pipe)
                    pipe.execute()
            except redis.RedisError as exc:  # best effort: a Redis hiccup must not end the sender
                logger.warning("fleet metrics not written: {}", exc)
            for done in flushed:
                done.set()
