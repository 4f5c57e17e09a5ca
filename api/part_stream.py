"""What every stream of a job's parts shares (speech sentence by sentence, a long file's
transcript piece by piece): reading each part's output in order as soon as its step has
finished, and Server-Sent Events."""

from __future__ import annotations

import json
import time
from typing import Any

from api.dispatch import JobDispatcher, finished_job_body
from api.errors import APIError
from jobcontract.capabilities import capability
from jobcontract.plan import JobPlan


class PartReader:
    """Waits for a job's parts in order: one pub/sub wake-up per finished part (the worker
    publishes it), a re-read of the record to notice a failed job."""

    def __init__(self, dispatcher: JobDispatcher, job_id: str, plan: JobPlan, wait_s: float, noun: str = "part"):
        self._dispatcher = dispatcher
        self._job_id = self.job_id = job_id
        self._steps = plan.part_steps
        self._unpack = capability(plan.steps[self._steps[0]].capability).unpack
        self._wait_s = wait_s
        self._noun = noun  # what error messages call a part ("sentence")

    async def part(self, index: int) -> Any:
        store, events = self._dispatcher.store, self._dispatcher.events
        deadline = time.monotonic() + self._wait_s
        while True:
            waiter = events.register(self._job_id)
            try:
                data = await store.step_output(self._job_id, self._steps[index])
                if data is not None:
                    return self._unpack(data)
                record = await store.get(self._job_id)
                if record is None:
                    raise APIError(500, f"job {self._job_id} vanished while running", reason="job_lost",
                                   job_id=self._job_id)
                if record.status in ("failed", "cancelled"):
                    await finished_job_body(record, store)  # raises the job's own error
                if record.status == "succeeded":
                    raise APIError(410, f"{self._noun} {index} of job {self._job_id} has expired",
                                   reason="result_expired", job_id=self._job_id)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise APIError(504, f"{self._noun} {index} of job {self._job_id} was not ready within "
                                   f"{self._wait_s:g}s", reason="sync_wait_exceeded", job_id=self._job_id)
                await events.pause(waiter, remaining)
            finally:
                events.unregister(self._job_id, waiter)


def sse_event(payload: dict) -> bytes:
    """One Server-Sent Event carrying ``payload`` as JSON (OpenAI's streams: ``data:`` lines only)."""
    return f"data: {json.dumps(payload)}\n\n".encode()
