"""Finding jobs whose Celery message was lost, and sending them again.

Claims (``workers.claims``) bring back, within a heartbeat TTL, any message a dead worker had
*recorded* as unacknowledged; the visibility timeout backs them up. kombu's Redis transport
has one window neither covers: BRPOP has already taken the message off the queue list, but
the worker has not yet written it to the ``unacked`` hash (the reply may even sit unread in
the socket while the worker's threads are busy). A worker killed then takes the message with it; the kill test caught
this in about one run in five.

Job records close the gap: every unfinished job is listed in ``PENDING_KEY`` scored by its
last progress. Once a job has been quiet for longer than the visibility timeout, one
worker at a time (a Redis lock) checks whether its message still exists, in its queue or
in ``unacked``; if it exists nowhere, the job is sent again from its record (its input is
kept in Redis beside the record). Inference is idempotent and a job's first ending wins,
so a rare needless resend costs compute, never a wrong answer.
"""

from __future__ import annotations

import json
import time

import redis
from celery import Celery
from loguru import logger

from jobcontract import scripts
from jobcontract.keys import PENDING_KEY, SWEEPER_LOCK_KEY, job_key
from jobcontract.plan import JobPlan, PlanFormatError
from jobcontract.priorities import queue_keys
from jobcontract.record import TERMINAL
from speechmodels.config import queue_for
from workers.canvas import job_ids_of_task, send_job
from workers.periodic import Periodic

UNACKED_KEY = "unacked"  # kombu's Redis transport default
SCAN_LIMIT = 500


def _message_job_ids(raw: str) -> list[str]:
    try:
        message = json.loads(raw)
    except (TypeError, ValueError):
        return []
    if isinstance(message, list):  # unacked entries are [message, exchange, routing_key]
        message = message[0] if message else {}
    headers = message.get("headers") if isinstance(message, dict) else None
    task_id = headers.get("id") if isinstance(headers, dict) else None
    return job_ids_of_task(task_id) if isinstance(task_id, str) else []


class LostJobSweeper:
    def __init__(self, client: redis.Redis, celery: Celery, worker_id: str, quiet_after_s: float, interval_s: float):
        self._client = client  # decode_responses=True
        self._celery = celery
        self._worker_id = worker_id
        self._quiet_after_s = quiet_after_s
        self._interval_s = interval_s
        self._loop = Periodic("lost-job sweep", interval_s, self.sweep)
        self._count_resend = client.register_script(scripts.COUNT_RESEND)

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    def sweep(self) -> list[str]:
        """One pass; returns the ids of the jobs sent again."""
        if not self._client.set(SWEEPER_LOCK_KEY, self._worker_id, nx=True, px=max(100, int(self._interval_s * 900))):
            return []  # another worker sweeps this round
        now = time.time()
        quiet = self._client.zrangebyscore(PENDING_KEY, "-inf", now - self._quiet_after_s, start=0, num=SCAN_LIMIT)
        if not quiet:
            return []
        candidates: dict[str, tuple[JobPlan, str, dict | None]] = {}
        for job_id in quiet:
            status, priority, plan, trace = self._client.hmget(job_key(job_id), "status", "priority", "plan", "trace")
            if status is None or status in TERMINAL:
                self._client.zrem(PENDING_KEY, job_id)  # finished or expired: nothing to watch
                continue
            try:
                candidates[job_id] = (JobPlan.from_json(plan or "null"), priority or "normal",
                                      json.loads(trace) if trace else None)
            except PlanFormatError as exc:  # recorded by another version: it cannot be resent from here
                logger.warning("job {} cannot be resent: {}", job_id, exc)
                self._client.zrem(PENDING_KEY, job_id)
        if not candidates:
            return []
        # a job's later steps wait on their own models' queues
        present = self._message_ids({model for plan, _, _ in candidates.values() for model in plan.models()})
        resent = []
        for job_id, (plan, priority, trace) in candidates.items():
            if job_id not in present:  # neither waiting its turn nor held (unacked) by a worker
                logger.warning("job {} for {} has no message anywhere; sending it again", job_id, plan.name)
                # a failed send leaves the job quiet: the next sweep retries it. The job goes
                # again whole: steps already done return at once, the rest run; in the job's trace
                send_job(self._celery, job_id, plan, priority, trace)
                self._count_resend(keys=[job_key(job_id)])
                resent.append(job_id)
            self._client.zadd(PENDING_KEY, {job_id: now})  # quiet again from now on
        return resent

    def _message_ids(self, models: set[str]) -> set[str]:
        ids = set()
        for model in models:
            for key in queue_keys(queue_for(model)):
                for raw in self._client.lrange(key, 0, -1):
                    ids.update(_message_job_ids(raw))
        for raw in self._client.hvals(UNACKED_KEY):
            ids.update(_message_job_ids(raw))
        return ids
