"""The API's job store against a real Redis: the time budget of a large input's write."""

import asyncio
import time

import redis
from redis import asyncio as aioredis

from jobcontract.async_store import BULK_BYTES_PER_S, SMALL_INPUT_BYTES, AsyncJobStore
from jobcontract.keys import input_key, job_key
from jobcontract.payload import JobInput
from jobcontract.plan import JobPlan
from jobcontract.record import QUEUED, JobRecord

#: each such input adds 0.8 s to the budget of the writes queued behind it
INPUT_BYTES = 4 * 1024 * 1024
STALL_S = 3.0


def _record(job_id: str) -> JobRecord:
    return JobRecord(id=job_id, status=QUEUED, created_at=time.time(), plan=JobPlan.build("m", "vad", [("m", "vad")]))


def _creates_while_redis_stalls(url: str, count: int) -> list[BaseException | None]:
    """``count`` concurrent creates of large inputs while Redis holds every write for STALL_S."""
    job_input = JobInput({"audio": b"\0" * INPUT_BYTES})
    assert len(job_input.encode()) > SMALL_INPUT_BYTES  # the bulk path, with its budget
    assert 1.0 + len(job_input.encode()) / BULK_BYTES_PER_S < STALL_S  # one write alone times out

    async def run() -> list[BaseException | None]:
        # the API's two clients: the fast one's 1 s timeout, the bulk one's room for a whole body
        fast = aioredis.Redis.from_url(url, decode_responses=True, socket_timeout=1.0)
        bulk = aioredis.Redis.from_url(url, socket_timeout=60)
        store = AsyncJobStore(fast, 120, bulk=bulk, fast_timeout_s=1.0)
        try:
            redis.Redis.from_url(url).client_pause(int(STALL_S * 1000), all=False)  # writes wait, reads go on
            return await asyncio.gather(*(store.create(_record(f"stalled-{count}-{index}"), job_input)
                                          for index in range(count)), return_exceptions=True)
        finally:
            await fast.aclose()
            await bulk.aclose()

    return asyncio.run(run())


def test_a_stalled_redis_fails_a_lone_large_write_within_its_budget(private_redis):
    [outcome] = _creates_while_redis_stalls(private_redis.url, 1)
    assert isinstance(outcome, redis.exceptions.TimeoutError), outcome
    assert "4194" in str(outcome) and "took over 1.8s" in str(outcome)


def test_large_writes_under_way_together_lengthen_each_others_budget(private_redis):
    """Eight 4 MB inputs at once: the k-th waits for the k-1 ahead of it, so its budget counts
    their bytes too (1.8 s for the first, 7.4 s for the last); a budget of its own bytes alone
    failed every one of them on a burst that a healthy Redis takes in its stride."""
    outcomes = _creates_while_redis_stalls(private_redis.url, 8)
    assert isinstance(outcomes[0], redis.exceptions.TimeoutError), outcomes
    assert outcomes[-1] is None, outcomes
    client = redis.Redis.from_url(private_redis.url)
    assert client.exists(job_key("stalled-8-7"), input_key("stalled-8-7")) == 2
    assert client.strlen(input_key("stalled-8-7")) > INPUT_BYTES
