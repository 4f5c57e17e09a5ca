"""The workers' (synchronous) side of job records: look up the plan, start a step, keep a
step's output for the steps after it, end the job."""

from __future__ import annotations

import json
import time
from typing import Any

import redis

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
from jobcontract.plan import JobPlan, PlanFormatError
from jobcontract.record import FAILED, SUCCEEDED, JobError, JobRecord


class JobStore:
    def __init__(self, redis_url: str, ttl_s: int):
        self._client = redis.Redis.from_url(redis_url, decode_responses=True)
        self._binary = redis.Redis.from_url(redis_url)  # inputs and outputs are bytes; records are text
        self._ttl_s = ttl_s
        self._start = self._binary.register_script(scripts.START)  # pipelined with the input's GET
        self._finish = self._client.register_script(scripts.FINISH)
        self._step_done = self._client.register_script(scripts.STEP_DONE)

    def plan(self, job_id: str) -> JobPlan | None:
        """The job's plan; None once its record is gone (expired, or never accepted)."""
        raw = self._client.hget(job_key(job_id), "plan")
        return JobPlan.from_json(raw) if raw is not None else None

    def plan_and_callback(self, job_id: str) -> tuple[JobPlan | None, bool]:
        """The job's plan and whether it asked for a callback (set when the job is created), in
        one round trip; a plan this version cannot read raises its ``PlanFormatError``."""
        [read] = self.plans_and_callbacks([job_id])
        if isinstance(read, PlanFormatError):
            raise read
        return read

    def plans_and_callbacks(self, job_ids: list[str]) -> list[tuple[JobPlan | None, bool] | PlanFormatError]:
        """The plan and callback flag of several jobs in one round trip; a plan this version
        cannot read comes back as its ``PlanFormatError``, so one job's does not hide the others'."""
        with self._client.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hmget(job_key(job_id), ["plan", "callback_url"])
            replies = pipe.execute()
        read: list[tuple[JobPlan | None, bool] | PlanFormatError] = []
        for raw, callback_url in replies:
            try:
                read.append(((JobPlan.from_json(raw) if raw is not None else None), callback_url is not None))
            except PlanFormatError as exc:
                read.append(exc)
        return read

    def start(self, job_id: str, step: int, step_info: dict) -> tuple[str, float | None]:
        """Mark the job running. Returns the status found ('running' means go ahead) and,
        when running, the job's creation time."""
        return self.start_reading_input(job_id, step, step_info)[:2]

    def start_reading_input(self, job_id: str, step: int, step_info: dict) -> tuple[str, float | None, bytes | None]:
        """``start``, and the job's stored input (``JobInput.decode`` reads it) in the same round trip."""
        return self.start_reading_inputs([(job_id, step, step_info)])[0]

    def start_reading_inputs(self, starts: list[tuple[str, int, dict]]) -> list[tuple[str, float | None, bytes | None]]:
        """``start_reading_input`` of several (job id, step, step info) in one round trip."""
        now = repr(time.time())
        arguments = [(job_id, [now, step_field(step), json.dumps(info), job_id]) for job_id, step, info in starts]
        try:
            replies = self._start_and_get_all(arguments)
        except redis.exceptions.NoScriptError:
            # a Redis without the script (restarted, flushed): loaded, and the pipeline sent again
            # (a NOSCRIPT ran nothing, and the GETs change nothing)
            self._binary.script_load(scripts.START)
            replies = self._start_and_get_all(arguments)
        return [(status.decode(), float(created_at) if created_at else None, raw_input)
                for status, created_at, raw_input in replies]

    def _start_and_get_all(self, arguments: list[tuple[str, list]]) -> list[tuple[bytes, bytes | None, bytes | None]]:
        # EVALSHA itself: a registered script on a pipeline sends SCRIPT EXISTS first, a round
        # trip more per step
        with self._binary.pipeline(transaction=False) as pipe:
            for job_id, args in arguments:
                pipe.evalsha(self._start.sha, 2, job_key(job_id), PENDING_KEY, *args)
                pipe.get(input_key(job_id))
            replies = pipe.execute()
        return [(*replies[index], replies[index + 1]) for index in range(0, len(replies), 2)]

    def input(self, job_id: str) -> JobInput | None:
        raw = self._binary.get(input_key(job_id))
        return JobInput.decode(raw) if raw is not None else None

    def has_step_output(self, job_id: str, step: int) -> bool:
        return bool(self._binary.exists(step_output_key(job_id, step)))

    def step_output(self, job_id: str, step: int) -> bytes | None:
        return self._binary.get(step_output_key(job_id, step))

    def finish_step(self, job_id: str, step: int, step_info: dict, data: bytes) -> str:
        """Keep a step's packed output, then record the step (which wakes streams waiting for it)."""
        self._binary.set(step_output_key(job_id, step), data, ex=self._ttl_s)
        return self._step_done(keys=[job_key(job_id), PENDING_KEY],
                               args=[repr(time.time()), step_field(step), json.dumps(step_info), job_id,
                                     EVENTS_CHANNEL])

    def release_step_outputs(self, job_id: str, plan: JobPlan, stream_keep_s: int) -> None:
        """A finished job's step outputs are no longer needed by any step: dropped now (a redelivered
        step of a finished job is skipped before it reads them), or, for a stream still reading
        its parts, kept ``stream_keep_s`` more."""
        keys = [step_output_key(job_id, index) for index in range(len(plan.steps) - 1)]
        if not keys:
            return
        if plan.streamed:
            with self._binary.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.expire(key, stream_keep_s)
                pipe.execute()
        else:
            self._binary.delete(*keys)

    def put_result_data(self, job_id: str, data: bytes, keep_s: int | None = None) -> None:
        self._binary.set(result_data_key(job_id), data, ex=keep_s or self._ttl_s)

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
