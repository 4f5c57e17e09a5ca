"""One pub/sub listener per API process that wakes every synchronous request and stream
waiting in it (the job records themselves: ``jobcontract.async_store``)."""

from __future__ import annotations

import asyncio
import contextlib

import redis.asyncio as aioredis
from loguru import logger

from jobcontract.keys import EVENTS_CHANNEL


class JobEvents:
    """One subscription per API process to the jobs' terminal-transition channel.

    Waiters register before their job is sent, so no event can slip between the send and
    the wait; if the subscription breaks, waiters fall back to reading the record (see
    ``JobDispatcher.wait``) while this reconnects.
    """

    def __init__(self, client: aioredis.Redis):
        self._client = client
        self._waiters: dict[str, set[asyncio.Future]] = {}
        self._task: asyncio.Task | None = None
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="job-events")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def register(self, job_id: str) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job_id, set()).add(future)
        return future

    def unregister(self, job_id: str, future: asyncio.Future) -> None:
        waiters = self._waiters.get(job_id)
        if waiters is not None:
            waiters.discard(future)
            if not waiters:
                del self._waiters[job_id]

    async def pause(self, waiter: asyncio.Future, remaining_s: float) -> None:
        """Until ``waiter`` is woken or a slice of ``remaining_s`` passes. The pub/sub wake-up
        is the fast path; while the subscription is broken, short slices let the caller
        re-read the record instead."""
        slice_s = min(remaining_s, 5.0 if self.connected.is_set() else 0.5)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), slice_s)
        except asyncio.TimeoutError:
            pass

    @property
    def waiting(self) -> int:
        return sum(len(waiters) for waiters in self._waiters.values())

    async def _listen(self) -> None:
        backoff = 0.1
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(EVENTS_CHANNEL)
                self.connected.set()
                backoff = 0.1
                async for message in pubsub.listen():
                    if message and message.get("type") == "message":
                        self._wake(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection lost: waiters poll meanwhile
                self.connected.clear()
                logger.warning("job event subscription lost ({}); retrying in {:.1f}s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _wake(self, job_id: str) -> None:
        for future in self._waiters.pop(job_id, ()):
            if not future.done():
                future.set_result(None)
