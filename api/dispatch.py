"""From a planned request to a job: check every model of the plan has a live consumer (or
scales from zero: then the waiting job is what makes the autoscaler start one), record the
job, send its steps to their models' queues, then either answer 202 or wait for the job's end."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from anyio import to_thread
from celery import Celery
from fastapi import Response

from api.errors import APIError, unavailable
from api.events import JobEvents
from api.job_sender import JobSender
from api.rendering import RENDERERS
from jobcontract import tracing
from jobcontract.async_store import AsyncJobStore
from jobcontract.callbacks import CallbackRefused, check_callback_url
from jobcontract.capabilities import capability
from jobcontract.keys import consumers_key
from jobcontract.payload import JobInput
from jobcontract.plan import JobPlan
from jobcontract.priorities import PRIORITIES, queue_keys
from jobcontract.record import QUEUED, JobRecord
from jobcontract.settings import APISettings
from workers.canvas import enqueue_delivery

#: how long a submit trusts a model's last "it has a live consumer" (see ``has_live_consumer``)
LIVE_CONSUMER_CACHE_S = 0.5


@dataclass(frozen=True)
class Preference:
    """How the caller wants its job handled: RFC 7240 ``Prefer`` (``respond-async``,
    ``wait=<seconds>``), ``X-Priority`` (low/normal/high) and ``X-Deadline`` (seconds after
    which a job still queued is dropped instead of run)."""

    respond_async: bool = False
    wait_s: float | None = None
    priority: str = "normal"
    deadline_s: float | None = None
    #: the caller's tenant (from its API key), who will own the job; None without keys
    owner: str | None = None

    @classmethod
    def parse(cls, prefer: str | None, priority: str | None = None, deadline: str | None = None,
              owner: str | None = None) -> Preference:
        tokens = [token.strip().lower() for token in (prefer or "").split(",")]
        wait = next((m.group(1) for t in tokens if (m := re.fullmatch(r"wait\s*=\s*(\d+(?:\.\d+)?)", t))), None)
        priority = (priority or "normal").strip().lower()
        if priority not in PRIORITIES:
            raise APIError(400, f"X-Priority must be one of {sorted(PRIORITIES)}", reason="invalid_priority",
                           param="X-Priority")
        deadline_s = None
        if deadline is not None:
            try:
                deadline_s = float(deadline)
            except ValueError:
                deadline_s = -1.0
            if not 0 < deadline_s <= 7 * 24 * 3600:
                raise APIError(400, "X-Deadline must be a number of seconds between 0 and one week",
                               reason="invalid_deadline", param="X-Deadline")
        return cls("respond-async" in tokens, float(wait) if wait is not None else None, priority, deadline_s, owner)


class JobDispatcher:
    def __init__(self, client: aioredis.Redis, celery: Celery, store: AsyncJobStore, events: JobEvents,
                 settings: APISettings, scale_from_zero: frozenset[str] = frozenset()):
        self._client = client
        #: models whose jobs are queued while no worker serves them (``scale_from_zero`` in config.yml)
        self._scale_from_zero = scale_from_zero
        self._celery = celery
        self._sender = JobSender(celery, settings.jobs_per_message)
        self._store = store
        self._events = events
        self._settings = settings
        #: model -> monotonic time until which a submit trusts that it has a live consumer
        self._live_until: dict[str, float] = {}

    @property
    def store(self) -> AsyncJobStore:
        return self._store

    @property
    def events(self) -> JobEvents:
        return self._events

    @property
    def settings(self) -> APISettings:
        return self._settings

    async def live_consumers(self, model_name: str) -> int:
        now = time.time()
        return await self._client.zcount(consumers_key(model_name), now - self._settings.heartbeat_ttl_s, "+inf")

    async def has_live_consumer(self, model_name: str) -> bool:
        """For a submit: whether the model has a live consumer. A yes is trusted for
        ``LIVE_CONSUMER_CACHE_S`` (a fraction of the heartbeat TTL the count already lags by),
        which spares every request under load its own ZCOUNT round trip; a no is never kept."""
        now = time.monotonic()
        if self._live_until.get(model_name, 0.0) > now:
            return True
        if await self.live_consumers(model_name) == 0:
            self._live_until.pop(model_name, None)
            return False
        self._live_until[model_name] = now + min(LIVE_CONSUMER_CACHE_S, self._settings.heartbeat_ttl_s / 4)
        return True

    async def queue_depth(self, queue: str) -> int:
        """Messages waiting in a queue (kombu's Redis transport keeps a list per priority step)."""
        async with self._client.pipeline(transaction=False) as pipe:
            for key in queue_keys(queue):
                pipe.llen(key)
            return sum(await pipe.execute())

    async def submit(self, plan: JobPlan, job_input: JobInput, preference: Preference, render: dict | None = None,
                     callback_url: str | None = None,
                     done_steps: dict[int, tuple[bytes, dict]] | None = None) -> JobRecord:
        """Queue the job; returns its record once finished, or at once when async was asked.
        ``done_steps``: steps already run elsewhere (packed output, progress), which no worker runs again.

        Raises 503 when no worker serves one of the plan's models (unless it scales from
        zero), 504 when a synchronous wait runs out.
        """
        if callback_url is not None:
            await self._check_callback(callback_url)
        for model in plan.models():
            if model not in self._scale_from_zero and not await self.has_live_consumer(model):
                raise unavailable(f"no worker is serving model '{model}' right now", reason="no_worker")
        job_id = uuid.uuid4().hex
        with tracing.started("job.submit", {tracing.JOB_ID: job_id, tracing.MODEL: plan.name}):
            record = await self._accept(job_id, plan, job_input, preference, render, callback_url, done_steps)
            waiter = None if preference.respond_async else self._events.register(record.id)
            try:
                await self._sender.send(record.id, plan, preference.priority, record.trace)
            except BaseException:  # the send failed, or the client went away mid-send
                if waiter is not None:
                    self._events.unregister(record.id, waiter)
                await self._store.delete(record.id)  # never accepted: leave no phantom job behind
                raise
        if waiter is None:
            return record
        return await self._wait(record.id, waiter, self.wait_budget(preference), record.deadline_at)

    async def _accept(self, job_id: str, plan: JobPlan, job_input: JobInput, preference: Preference,
                      render: dict | None, callback_url: str | None,
                      done_steps: dict[int, tuple[bytes, dict]] | None = None) -> JobRecord:
        created = time.time()
        deadline_at = created + preference.deadline_s if preference.deadline_s is not None else None
        record = JobRecord(id=job_id, status=QUEUED, created_at=created, plan=plan, render=render,
                           priority=preference.priority, deadline_at=deadline_at, callback_url=callback_url,
                           owner=preference.owner, trace=tracing.current_carrier())
        await self._store.create(record, job_input, done_steps)
        return record

    def wait_budget(self, preference: Preference) -> float:
        """How long a synchronous caller waits: its ``Prefer: wait``, else the default, capped."""
        wait_s = self._settings.sync_wait_s if preference.wait_s is None else preference.wait_s
        return min(wait_s, self._settings.max_sync_wait_s)

    async def _check_callback(self, url: str) -> None:
        if not self._settings.webhook_secret:
            raise APIError(400, "this server delivers no webhooks: SPEECHFLEET_WEBHOOK_SECRET is not set",
                           reason="webhooks_disabled", param="callback_url")
        try:
            await to_thread.run_sync(check_callback_url, url, self._settings.webhook_allow_private)
        except CallbackRefused as exc:
            raise APIError(400, str(exc), reason="invalid_callback_url", param="callback_url") from None

    async def notify(self, job_id: str) -> None:
        """Deliver the webhook of a job that ended here in the API (a cancel)."""
        await to_thread.run_sync(enqueue_delivery, job_id)

    async def _wait(self, job_id: str, waiter: asyncio.Future, wait_s: float,
                    deadline_at: float | None = None) -> JobRecord:
        deadline = time.monotonic() + wait_s
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise APIError(504, f"job {job_id} did not finish within {wait_s:g}s; it keeps running: "
                                   f"poll /v1/jobs/{job_id}", reason="sync_wait_exceeded",
                                   headers={"Location": f"/v1/jobs/{job_id}"}, job_id=job_id)
                # a job's X-Deadline may come first: looked at then (a job with no worker yet
                # is still queued, and the worker that takes it will drop it)
                until_deadline = deadline_at - time.time() if deadline_at is not None else 0.0
                await self._events.pause(waiter, min(remaining, until_deadline + 0.01) if until_deadline > 0
                                         else remaining)
                record = await self._store.get(job_id)
                if record is None:
                    raise APIError(500, f"job {job_id} vanished while running", reason="job_lost", job_id=job_id)
                if record.finished:
                    return record
                if record.status == QUEUED and deadline_at is not None and time.time() > deadline_at:
                    raise APIError(504, f"job {job_id}'s deadline passed before a worker could start it",
                                   reason="deadline_exceeded", headers={"Location": f"/v1/jobs/{job_id}"},
                                   job_id=job_id)
                if waiter.done():  # a wake-up for a state we already passed: wait for the next
                    waiter = self._events.register(job_id)
        finally:
            self._events.unregister(job_id, waiter)


def has_result_data(record: JobRecord) -> bool:
    """Whether the job's result has a binary side (audio), kept beside the record: a result
    with ``bytes`` (``jobcontract.capabilities.encode_speech``, the one encoder that keeps data)."""
    return (record.result or {}).get("bytes") is not None


async def finished_job_body(record: JobRecord, store: AsyncJobStore) -> dict[str, Any] | Response:
    """The body a synchronous request gets for a finished job (also ``GET /v1/jobs/{id}/result``)."""
    if record.status == "succeeded":
        renderer = RENDERERS.get(capability(record.capability).render)
        if renderer is not None and record.render is not None:
            data = None
            if has_result_data(record):
                data = await store.result_data(record.id)
                if data is None:
                    raise APIError(410, f"the audio of job {record.id} has expired", reason="result_expired",
                                   job_id=record.id)
            return renderer(record, data)
        return {"id": record.id, "model": record.model, "created": int(record.created_at), **(record.result or {})}
    if record.status == "failed" and record.error is not None:
        error = record.error
        raise APIError(error.status, error.message, reason=error.reason, param=error.param, job_id=record.id)
    if record.status == "cancelled":
        raise APIError(409, f"job {record.id} was cancelled", reason="job_cancelled", job_id=record.id)
    raise APIError(409, f"job {record.id} is {record.status}; its result is not ready", reason="job_not_finished",
                   headers={"Retry-After": "1"}, job_id=record.id)
