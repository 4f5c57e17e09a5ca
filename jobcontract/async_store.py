"""The API's (asyncio) side of job records: create, read, cancel, and read what steps and
results keep beside the record."""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from jobcontract import scripts
from jobcontract.keys import (
    EVENTS_CHANNEL,
    PENDING_KEY,
    input_key,
    job_key,
    result_data_key,
    step_output_key,
)
from jobcontract.payload import JobInput
from jobcontract.record import JobRecord


class AsyncJobStore:
    def __init__(self, client: aioredis.Redis, ttl_s: int, binary: aioredis.Redis | None = None):
        self._client = client  # decode_responses=True: records are text
        self._binary = binary or client  # outputs are bytes
        self._ttl_s = ttl_s
        self._cancel = client.register_script(scripts.CANCEL)

    async def create(self, record: JobRecord, job_input: JobInput) -> None:
        """Record the job and its input in one transaction, and list it as pending."""
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(job_key(record.id), mapping=record.initial_hash())
            pipe.expire(job_key(record.id), self._ttl_s)
            pipe.set(input_key(record.id), job_input.encode(), ex=self._ttl_s)
            pipe.zadd(PENDING_KEY, {record.id: record.created_at})
            await pipe.execute()

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

    async def cancel(self, job_id: str) -> str:
        """Cancel a queued job; returns the status found ('cancelled' when it worked)."""
        return await self._cancel(keys=[job_key(job_id), PENDING_KEY, input_key(job_id)],
                                  args=[repr(time.time()), job_id, EVENTS_CHANNEL])
