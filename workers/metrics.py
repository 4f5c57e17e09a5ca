"""The workers' side of the fleet metrics (layout in ``jobcontract.metrics``)."""

from __future__ import annotations

import math

import redis

from jobcontract.metrics import HISTOGRAMS, count, observe


class WorkerMetrics:
    def __init__(self, client: redis.Redis):
        self._client = client

    def batch(self, model: str, size: int) -> None:
        with self._client.pipeline(transaction=False) as pipe:
            observe(pipe, "batch_size", model, size)
            pipe.execute()

    def observations(self, model: str, observations) -> None:
        """A model family's own measurements (``SpeechModel.observe``), for the histograms the
        fleet knows; other names are ignored."""
        with self._client.pipeline(transaction=False) as pipe:
            for name, values in observations.items():
                if name in HISTOGRAMS:
                    for value in values:
                        observe(pipe, name, model, value)
            pipe.execute()

    def job(self, model: str, outcome: str | None, queue_wait_s: float | None = None, inference_s: float | None = None,
            real_time_factor: float | None = None) -> None:
        """A job's end (``outcome``; None for a part of a job, which is timed but not counted)."""
        with self._client.pipeline(transaction=False) as pipe:
            if outcome is not None:
                count(pipe, "jobs", model, outcome)
            for name, value in (("queue_wait_seconds", queue_wait_s), ("inference_seconds", inference_s),
                                ("real_time_factor", real_time_factor)):
                if value is not None and math.isfinite(value):
                    observe(pipe, name, model, value)
            pipe.execute()

    def webhook(self, outcome: str) -> None:
        with self._client.pipeline(transaction=False) as pipe:
            count(pipe, "webhook_deliveries", outcome)
            pipe.execute()
