"""From a validated request to a job: check a consumer is live, record the job, send the
task to the model's queue, then either answer 202 or wait for the job's end."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any

import redis.asyncio as aioredis
from anyio import to_thread
from celery import Celery
from fastapi import Response

from api.errors import APIError, unavailable
from api.jobs import AsyncJobStore, JobEvents
from api.rendering import RENDERERS
from speechmodels import ModelConfig
from workers.celery_app import send_job
from workers.jobs import QUEUED, JobRecord
from workers.liveness import consumers_key
from workers.priorities import PRIORITIES, queue_keys
from workers.settings import Settings
from workers.webhooks import CallbackRefused, check_callback_url, enqueue_delivery


@dataclass(frozen=True)
class Preference:
    """How the caller wants its job handled: RFC 7240 ``Prefer`` (``respond-async``,
    ``wait=<seconds>``), ``X-Priority`` (low/normal/high) and ``X-Deadline`` (seconds after
    which a job still queued is dropped instead of run)."""

    respond_async: bool = False
    wait_s: float | None = None
    priority: str = "normal"
    deadline_s: float | None = None

    @classmethod
    def parse(cls, prefer: str | None, priority: str | None = None, deadline: str | None = None) -> Preference:
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
        return cls("respond-async" in tokens, float(wait) if wait is not None else None, priority, deadline_s)


class JobDispatcher:
    def __init__(self, client: aioredis.Redis, celery: Celery, store: AsyncJobStore, events: JobEvents, settings: Settings):
        self._client = client
        self._celery = celery
        self._store = store
        self._events = events
        self._settings = settings

    @property
    def store(self) -> AsyncJobStore:
        return self._store

    @property
    def events(self) -> JobEvents:
        return self._events

    @property
    def settings(self) -> Settings:
        return self._settings

    async def live_consumers(self, model_name: str) -> int:
        now = time.time()
        return await self._client.zcount(consumers_key(model_name), now - self._settings.heartbeat_ttl_s, "+inf")

    async def queue_depth(self, queue: str) -> int:
        """Messages waiting in a queue (kombu's Redis transport keeps a list per priority step)."""
        async with self._client.pipeline(transaction=False) as pipe:
            for key in queue_keys(queue):
                pipe.llen(key)
            return sum(await pipe.execute())

    async def submit(self, model: ModelConfig, capability: str, payload: dict[str, Any],
                     preference: Preference, render: dict | None = None,
                     callback_url: str | None = None, parts: int = 0, stages: list[dict] | None = None,
                     head_capability: str | None = None, name: str | None = None) -> JobRecord:
        """Queue the job; returns its record once finished, or at once when async was asked.

        Raises 503 when no worker serves the model, 504 when a synchronous wait runs out.
        """
        if callback_url is not None:
            await self._check_callback(callback_url)
        for step_model in (model.name, *(stage["model"] for stage in stages or ())):
            if await self.live_consumers(step_model) == 0:
                raise unavailable(f"no worker is serving model '{step_model}' right now", reason="no_worker")
        created = time.time()
        deadline_at = created + preference.deadline_s if preference.deadline_s is not None else None
        # a toolchain's job carries its name; its first step runs on ``model`` as ``head_capability``
        head = {"model": model.name, "capability": head_capability} if head_capability else None
        record = JobRecord(id=uuid.uuid4().hex, model=name or model.name, capability=capability, status=QUEUED,
                           created_at=created, render=render, priority=preference.priority, deadline_at=deadline_at,
                           callback_url=callback_url, parts=parts, stages=stages or [], head=head)
        await self._store.create(record, payload)
        waiter = None if preference.respond_async else self._events.register(record.id)
        try:
            await to_thread.run_sync(partial(send_job, self._celery, record.id, model.name,
                                             head_capability or capability, priority=preference.priority,
                                             parts=parts, stages=stages or ()))
        except BaseException:  # the send failed, or the client went away mid-send
            if waiter is not None:
                self._events.unregister(record.id, waiter)
            await self._store.delete(record.id)  # never accepted: leave no phantom job behind
            raise
        if waiter is None:
            return record
        wait_s = self._settings.sync_wait_s if preference.wait_s is None else preference.wait_s
        wait_s = min(wait_s, self._settings.max_sync_wait_s)
        return await self._wait(record.id, waiter, wait_s)

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

    async def _wait(self, job_id: str, waiter: asyncio.Future, wait_s: float) -> JobRecord:
        deadline = time.monotonic() + wait_s
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise APIError(504, f"job {job_id} did not finish within {wait_s:g}s; it keeps running: "
                                   f"poll /v1/jobs/{job_id}", reason="sync_wait_exceeded",
                                   headers={"Location": f"/v1/jobs/{job_id}"}, job_id=job_id)
                await self._events.pause(waiter, remaining)
                record = await self._store.get(job_id)
                if record is None:
                    raise APIError(500, f"job {job_id} vanished while running", reason="job_lost", job_id=job_id)
                if record.finished:
                    return record
                if waiter.done():  # a wake-up for a state we already passed: wait for the next
                    waiter = self._events.register(job_id)
        finally:
            self._events.unregister(job_id, waiter)


async def finished_job_body(record: JobRecord, store: AsyncJobStore) -> dict[str, Any] | Response:
    """The body a synchronous request gets for a finished job (also ``GET /v1/jobs/{id}/result``)."""
    if record.status == "succeeded":
        renderer = RENDERERS.get(record.capability)
        if renderer is not None and record.render is not None:
            data = None
            if (record.result or {}).get("bytes") is not None:  # a binary side (audio), kept beside the record
                data = await store.output(record.id)
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
