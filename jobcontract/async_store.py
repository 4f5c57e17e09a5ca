"""The API's (asyncio) side of job records: create, read, cancel, and read what steps and
results keep beside the record."""

from __future__ import annotations

import asyncio
import json
import time

import redis.asyncio as aioredis
import redis.exceptions

from jobcontract import scripts
from jobcontract.keys import (
    EVENTS_CHANNEL,
    PENDING_KEY,
    input_key,
    job_key,
    result_data_key,
    step_field,
    step_output_key,
)
from jobcontract.payload import JobInput
from jobcontract.record import JobRecord

#: the slowest rate a healthy Redis takes large writes at, for the time budget of one
#: (a 19 MB input must not fail on the 1 s timeout meant to notice a dead Redis fast); the
#: budget counts the bulk bytes already under way too: concurrent writes share one Redis
BULK_BYTES_PER_S = 5 * 1024 * 1024
#: inputs up to this size go in the record's own transaction on the fast client (a megabyte
#: takes milliseconds on a healthy Redis, far inside its timeout); larger ones first, on ``bulk``
SMALL_INPUT_BYTES = 1024 * 1024


class AsyncJobStore:
    """``client`` fails fast (a short socket timeout); ``bulk``, for inputs, has a socket timeout
    long enough for the largest body, and each write gets a budget that grows with its bytes."""

    def __init__(self, client: aioredis.Redis, ttl_s: int, binary: aioredis.Redis | None = None,
                 bulk: aioredis.Redis | None = None, fast_timeout_s: float = 1.0):
        self._client = client  # decode_responses=True: records are text
        self._binary = binary or client  # outputs are bytes
        self._bulk = bulk or self._binary
        self._fast_timeout_s = fast_timeout_s
        self._bulk_bytes_in_flight = 0  # one event loop: plain arithmetic between awaits
        self._ttl_s = ttl_s
        self._cancel = client.register_script(scripts.CANCEL)

    async def create(self, record: JobRecord, job_input: JobInput,
                     done_steps: dict[int, tuple[bytes, dict]] | None = None) -> None:
        """Write the job's input, then record the job and list it as pending in one transaction
        (a record never exists without its input; an input whose record failed is removed).
        ``done_steps``: steps whose packed output and progress are known already (a worker that
        gets such a step finds its output and skips it)."""
        data = job_input.encode()
        # a small input goes in the record's own transaction: one round trip for the whole create
        inline = not done_steps and len(data) <= SMALL_INPUT_BYTES
        if not inline:
            # a burst of large uploads shares one Redis: each write waits for those ahead of it
            # (64 concurrent 1.1 MB inputs gave the last ones a 503 on a budget of their own bytes)
            ahead = self._bulk_bytes_in_flight
            budget = self._fast_timeout_s + (ahead + len(data)) / BULK_BYTES_PER_S
            self._bulk_bytes_in_flight += len(data)
            try:
                await asyncio.wait_for(self._bulk.set(input_key(record.id), data, ex=self._ttl_s), budget)
                for step, (output, _) in (done_steps or {}).items():
                    await self._binary.set(step_output_key(record.id, step), output, ex=self._ttl_s)
            except asyncio.TimeoutError:
                raise redis.exceptions.TimeoutError(f"writing a {len(data)}-byte input (behind {ahead} bytes of "
                                                    f"others) took over {budget:.1f}s") from None
            finally:
                self._bulk_bytes_in_flight -= len(data)
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                if inline:
                    pipe.set(input_key(record.id), data, ex=self._ttl_s)
                self._record(pipe, record, done_steps)
                await pipe.execute()
        except BaseException:  # no input is left behind by a create that failed
            await asyncio.shield(self._bulk.delete(input_key(record.id)))
            raise

    def _record(self, pipe, record: JobRecord, done_steps: dict[int, tuple[bytes, dict]] | None) -> None:
        pipe.hset(job_key(record.id), mapping=record.initial_hash())
        for step, (_, progress) in (done_steps or {}).items():
            pipe.hset(job_key(record.id), step_field(step), json.dumps(progress))
        pipe.expire(job_key(record.id), self._ttl_s)
        pipe.zadd(PENDING_KEY, {record.id: record.created_at})

    async def delete(self, job_id: str) -> None:
        await self._client.delete(job_key(job_id), input_key(job_id))
        await self._client.zrem(PENDING_KEY, job_id)

    async def get(self, job_id: str) -> JobRecord | None:
        raw = await self._client.hgetall(job_key(job_id))
        return JobRecord.from_hash(raw) if raw else None

    async def result_data(self, job_id: str) -> bytes | None:
        """A finished job's binary result (audio)."""
        return await self._binary.get(result_data_key(job_id))

    async def step_output(self, job_id: str, step: int) -> bytes | None:
        """A finished step's packed output (a sentence, for streams)."""
        return await self._binary.get(step_output_key(job_id, step))

    async def drop_result_data(self, job_id: str) -> None:
        """The caller was answered synchronously (or streamed to): the audio is not kept for the
        job's whole TTL (the record and its JSON result are)."""
        await self._binary.delete(result_data_key(job_id))

    async def cancel(self, job_id: str) -> str:
        """Cancel a queued job; returns the status found ('cancelled' when it worked)."""
        return await self._cancel(keys=[job_key(job_id), PENDING_KEY, input_key(job_id)],
                                  args=[repr(time.time()), job_id, EVENTS_CHANNEL])
