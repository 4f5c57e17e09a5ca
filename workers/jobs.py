"""Job records in Redis: one hash per job, with a TTL, moved between states by Lua scripts
so that concurrent actors (a cancelling API, a worker starting the job, a redelivered copy
of the same job) cannot overwrite each other.

States: queued -> running -> succeeded | failed; queued -> cancelled.
Every terminal transition is PUBLISHed on one channel, which the API listens to with a
single subscription to wake synchronous requests (no per-request polling, no per-task
result subscriptions).

This module holds the key layout, the scripts and the record codec for both sides; the
worker's synchronous store is here, the API's asyncio store in ``api/jobs.py``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import msgpack
import redis

KEY_PREFIX = "speechfleet:job:"
INPUT_PREFIX = "speechfleet:job-input:"
PART_PREFIX = "speechfleet:job-part:"  # a part step's output (binary), read by the join step and streams
OUTPUT_PREFIX = "speechfleet:job-output:"  # a job's binary result (audio), beside its JSON result
#: jobs not yet finished, scored by their last sign of progress (sent, started); the lost-job
#: sweeper (workers/recovery.py) looks here for jobs that went quiet
PENDING_KEY = "speechfleet:jobs:pending"
EVENTS_CHANNEL = "speechfleet:job-events"

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})

# KEYS: job, pending; ARGV: now, step field, step json, job id. Returns {status found, created_at};
# 'expired' for a queued job past its deadline (the caller fails it)
START_SCRIPT = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing', false} end
local deadline = redis.call('HGET', KEYS[1], 'deadline_at')
if status == 'queued' and deadline and tonumber(ARGV[1]) > tonumber(deadline) then return {'expired', false} end
if status == 'queued' or status == 'running' then
  redis.call('HSET', KEYS[1], 'status', 'running', 'updated_at', ARGV[1], ARGV[2], ARGV[3])
  redis.call('HSETNX', KEYS[1], 'started_at', ARGV[1])
  redis.call('HINCRBY', KEYS[1], 'attempts', 1)
  redis.call('ZADD', KEYS[2], ARGV[1], ARGV[4])
  return {'running', redis.call('HGET', KEYS[1], 'created_at')}
end
return {status, false}
"""

# KEYS: job, pending, input; ARGV: now, new status, 'result'|'error', payload json, step field,
# step json, ttl, job id, channel
FINISH_SCRIPT = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
if status ~= 'queued' and status ~= 'running' then return status end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'updated_at', ARGV[1], 'finished_at', ARGV[1],
           ARGV[3], ARGV[4], ARGV[5], ARGV[6])
redis.call('EXPIRE', KEYS[1], ARGV[7])
redis.call('ZREM', KEYS[2], ARGV[8])
redis.call('DEL', KEYS[3])
redis.call('PUBLISH', ARGV[9], ARGV[8])
return ARGV[2]
"""

# a part step finished (its output is stored); the job runs on. KEYS: job, pending; ARGV: now,
# step field, step json, job id, channel. The PUBLISH wakes streams waiting for parts.
STEP_SCRIPT = """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'running' then return status or 'missing' end
redis.call('HSET', KEYS[1], 'updated_at', ARGV[1], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[4])
redis.call('PUBLISH', ARGV[5], ARGV[4])
return status
"""

# KEYS: job, pending, input; ARGV: now, job id, channel
CANCEL_SCRIPT = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
if status == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'updated_at', ARGV[1], 'finished_at', ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
  redis.call('DEL', KEYS[3])
  redis.call('PUBLISH', ARGV[3], ARGV[2])
  return 'cancelled'
end
if status == 'cancelled' then return 'already_cancelled' end
return status
"""


def input_key(job_id: str) -> str:
    """The job's input (msgpack), kept out of the Celery message so messages stay small and a
    lost message can be sent again from the record alone."""
    return INPUT_PREFIX + job_id


def part_key(job_id: str, part: int) -> str:
    return f"{PART_PREFIX}{job_id}:{part}"


def output_key(job_id: str) -> str:
    return OUTPUT_PREFIX + job_id


def shared_fields(payload: dict) -> dict:
    """A job's request without its per-part fields: what every step of the job sees."""
    return {key: value for key, value in payload.items() if key != "parts"}


def part_request(payload: dict, part: int) -> dict:
    """The request of one part of a job split into parts: the shared fields plus the part's own
    (``payload["parts"][part]``, e.g. one sentence of a long text)."""
    return {**shared_fields(payload), **payload["parts"][part]}


def encode_input(payload: dict) -> bytes:
    return msgpack.packb(payload, use_bin_type=True)


def decode_input(raw: bytes) -> dict:
    return msgpack.unpackb(raw, raw=False)


def job_key(job_id: str) -> str:
    return KEY_PREFIX + job_id


def step_field(index: int) -> str:
    return f"step.{index}"


@dataclass
class JobError:
    """The error of a failed job, in the project's envelope terms."""

    message: str
    reason: str | None = None  # the envelope's machine-readable slug
    param: str | None = None
    status: int = 400  # the HTTP status the job's result answers with

    def to_json(self) -> str:
        return json.dumps(self.__dict__)


@dataclass
class JobRecord:
    id: str
    model: str
    capability: str
    status: str
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0
    resent: int = 0  # times the lost-job sweeper had to send it again
    steps: list[dict] = field(default_factory=list)
    result: Any = None
    error: JobError | None = None
    render: dict | None = None  # how the API presents the result (response format, dialect)
    priority: str = "normal"
    deadline_at: float | None = None  # dropped, not run, if still queued then
    callback_url: str | None = None
    webhook_attempts: list[dict] = field(default_factory=list)
    #: a job split into parts runs them as a chord: steps 0..parts-1 in parallel, then a join
    #: step (``parts``) that assembles their outputs; 0 means one step
    parts: int = 0
    #: post-generation filters, ``{"model", "capability"}`` each, run after the main step(s)
    stages: list[dict] = field(default_factory=list)
    #: a toolchain's first step, ``{"model", "capability"}``, when it is not ``model`` itself
    head: dict | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> JobRecord:
        def number(name: str) -> float | None:
            return float(raw[name]) if raw.get(name) else None

        step_fields = sorted((k for k in raw if k.startswith("step.")), key=lambda k: int(k.partition(".")[2]))
        steps = [json.loads(raw[name]) for name in step_fields]
        return cls(
            id=raw["id"], model=raw["model"], capability=raw["capability"], status=raw["status"],
            created_at=float(raw["created_at"]), started_at=number("started_at"), finished_at=number("finished_at"),
            attempts=int(raw.get("attempts", 0)), resent=int(raw.get("resent", 0)), steps=steps,
            result=json.loads(raw["result"]) if raw.get("result") else None,
            error=JobError(**json.loads(raw["error"])) if raw.get("error") else None,
            render=json.loads(raw["render"]) if raw.get("render") else None,
            priority=raw.get("priority", "normal"), deadline_at=number("deadline_at"),
            callback_url=raw.get("callback_url"),
            webhook_attempts=[json.loads(raw[name]) for name in sorted(
                (k for k in raw if k.startswith("webhook.")), key=lambda k: int(k.partition(".")[2]))],
            parts=int(raw.get("parts", 0)),
            stages=json.loads(raw["stages"]) if raw.get("stages") else [],
            head=json.loads(raw["head"]) if raw.get("head") else None,
        )

    def initial_hash(self) -> dict[str, str]:
        fields = {"id": self.id, "model": self.model, "capability": self.capability, "status": self.status,
                  "created_at": repr(self.created_at), "updated_at": repr(self.created_at), "attempts": "0",
                  "priority": self.priority}
        if self.deadline_at is not None:
            fields["deadline_at"] = repr(self.deadline_at)
        if self.callback_url is not None:
            fields["callback_url"] = self.callback_url
        if self.render is not None:
            fields["render"] = json.dumps(self.render)
        if self.parts:
            fields["parts"] = str(self.parts)
        if self.stages:
            fields["stages"] = json.dumps(self.stages)
        if self.head:
            fields["head"] = json.dumps(self.head)
        return fields


class WorkerJobStore:
    """The worker's side: start a step, finish a job."""

    def __init__(self, redis_url: str, ttl_s: int):
        self._client = redis.Redis.from_url(redis_url, decode_responses=True)
        self._binary = redis.Redis.from_url(redis_url)  # inputs are bytes; records are text
        self._ttl_s = ttl_s
        self._start = self._client.register_script(START_SCRIPT)
        self._finish = self._client.register_script(FINISH_SCRIPT)
        self._step = self._client.register_script(STEP_SCRIPT)

    def start(self, job_id: str, step: int, step_info: dict) -> tuple[str, float | None]:
        """Mark the job running. Returns the status found ('running' means go ahead) and,
        when running, the job's creation time."""
        status, created_at = self._start(keys=[job_key(job_id), PENDING_KEY],
                                         args=[repr(time.time()), step_field(step), json.dumps(step_info), job_id])
        return status, float(created_at) if created_at else None

    def input(self, job_id: str) -> dict | None:
        raw = self._binary.get(input_key(job_id))
        return decode_input(raw) if raw is not None else None

    def has_part(self, job_id: str, part: int) -> bool:
        return bool(self._binary.exists(part_key(job_id, part)))

    def part(self, job_id: str, part: int) -> bytes | None:
        return self._binary.get(part_key(job_id, part))

    def finish_part(self, job_id: str, part: int, step_info: dict, data: bytes) -> str:
        """Store a part's output, then record its step (which wakes streams waiting for it)."""
        self._binary.set(part_key(job_id, part), data, ex=self._ttl_s)
        return self._step(keys=[job_key(job_id), PENDING_KEY],
                          args=[repr(time.time()), step_field(part), json.dumps(step_info), job_id, EVENTS_CHANNEL])

    def put_output(self, job_id: str, data: bytes) -> None:
        self._binary.set(output_key(job_id), data, ex=self._ttl_s)

    def has_callback(self, job_id: str) -> bool:
        return bool(self._client.hexists(job_key(job_id), "callback_url"))

    def get(self, job_id: str) -> JobRecord | None:
        raw = self._client.hgetall(job_key(job_id))
        return JobRecord.from_hash(raw) if raw else None

    def succeed(self, job_id: str, step: int, step_info: dict, result: Any) -> str:
        return self._end(job_id, SUCCEEDED, "result", json.dumps(result), step, step_info)

    def fail(self, job_id: str, step: int, step_info: dict, error: JobError) -> str:
        return self._end(job_id, FAILED, "error", error.to_json(), step, step_info)

    def _end(self, job_id: str, status: str, field_name: str, payload: str, step: int, step_info: dict) -> str:
        return self._finish(
            keys=[job_key(job_id), PENDING_KEY, input_key(job_id)],
            args=[repr(time.time()), status, field_name, payload, step_field(step), json.dumps(step_info),
                  self._ttl_s, job_id, EVENTS_CHANNEL],
        )
