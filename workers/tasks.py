"""The one step task: any step of any job's plan, on the queue of the model that runs it.

A step's work is in the plan on the job record (``jobcontract.plan``): an inference step
hands its request to the model's micro-batcher, a join step assembles the parts' outputs.
The last step ends the job with its result; every other step keeps its packed output for
the steps after it.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, as_completed
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any

import redis
from celery import Task
from celery.exceptions import Reject
from loguru import logger

from jobcontract import tracing
from jobcontract.capabilities import Encoded, capability
from jobcontract.keys import job_key, step_field
from jobcontract.payload import JobInput
from jobcontract.plan import JobPlan, PlanFormatError, PlanStep
from jobcontract.record import RUNNING, TERMINAL, JobError
from jobcontract.settings import worker_settings
from jobcontract.store import JobStore
from speechmodels import InputError
from workers import runtime
from workers.batcher import BatcherClosed, BatchStats
from workers.canvas import enqueue_delivery
from workers.celery_app import FORMER_STEP_TASKS, STEP_GROUP_TASK, STEP_TASK, app
from workers.metrics import WorkerMetrics

if TYPE_CHECKING:
    from opentelemetry.trace import Span


@lru_cache
def metrics() -> WorkerMetrics:
    # deferred: a step's task thread does not wait on the metrics round trip
    return WorkerMetrics(redis.Redis.from_url(worker_settings().redis_url), deferred=True)


@lru_cache
def job_store() -> JobStore:
    settings = worker_settings()
    return JobStore(settings.redis_url, settings.job_ttl_s)


class JobFailed(Exception):
    """Raised after the failure is recorded on the job, so Celery (and Flower, and a chain)
    see the task as failed too."""


class StepError(Exception):
    """A step failed in a way that ends the job with ``error``."""

    def __init__(self, error: JobError):
        super().__init__(error.message)
        self.error = error


@dataclass(frozen=True)
class StepRun:
    output: Any
    stats: BatchStats | None = None  # None for a join, which makes no model call
    audio_seconds: float | None = None
    submitted_at: float | None = None  # wall clock, when the item went to the batcher


@dataclass
class _Opened:
    """A step marked running, with what its run needs (read in the same round trips)."""

    job_id: str
    index: int
    step: PlanStep
    plan: JobPlan
    info: dict  # the step's progress, recorded on the job when it ends
    raw_input: bytes | None  # the job's stored input; None once expired
    callback: bool  # whether the job asked for a webhook


@dataclass(frozen=True)
class _Submitted:
    """An inference step's item, handed to the model's batcher."""

    future: Future
    item: Any
    submitted_at: float  # wall clock


@app.task(name=STEP_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, throws=(JobFailed,))
def run_step(self: Task, job_id: str, index: int):
    return _run_step(self, job_store(), job_id, index, lone_message=True)


@app.task(name=STEP_GROUP_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
def run_steps(self: Task, job_ids: list[str]) -> None:
    """The steps of several one-step jobs of one model, from one message
    (``workers.canvas.send_one_step_jobs``): every job is marked running and handed to the
    batcher before any is waited on, so they share batches, and each ends as soon as its own
    output is ready. A job's failure ends that job only; the message is acked once all have
    ended (a worker killed before that leaves it to claim recovery, and a redelivery skips the
    jobs that had ended)."""
    store = job_store()
    planned: list[tuple[str, JobPlan, bool]] = []
    # every plan read (one round trip) before any job starts: a model this worker lacks puts the message back whole
    for job_id, read in zip(job_ids, store.plans_and_callbacks(job_ids)):
        with suppress(JobFailed):
            usable = _usable_plan(self, store, job_id, 0, read)
            if usable is not None:
                planned.append((job_id, *usable))
    starting: list[tuple[str, JobPlan, bool, dict]] = []
    for job_id, plan, callback in planned:
        if not plan.is_last(0):  # never sent this way; run as a step of its own
            with suppress(JobFailed):
                _run_step(self, store, job_id, 0, lone_message=False)
            continue
        info = _step_info(self, plan.steps[0], runtime.SERVED[plan.steps[0].model].config.queue)
        info["message_jobs"] = len(job_ids)
        starting.append((job_id, plan, callback, info))
    started = store.start_reading_inputs([(job_id, 0, info) for job_id, _, _, info in starting])
    opened_steps = [_opened(store, job_id, 0, plan, callback, info, start)
                    for (job_id, plan, callback, info), start in zip(starting, started)]
    waiting: dict[Future, tuple[_Opened, JobInput, _Submitted]] = {}
    for opened in filter(None, opened_steps):  # each decoded and handed to the batcher; none waited on yet
        with suppress(JobFailed):
            job_input, submitted = _guarded(store, opened, partial(_decode_and_submit, store, opened))
            waiting[submitted.future] = (opened, job_input, submitted)
    if planned:
        metrics().observations(planned[0][1].steps[0].model, {"jobs_per_message": [len(job_ids)]})
    timeout_s = worker_settings().model_timeout_s
    try:
        for future in as_completed(list(waiting), timeout=timeout_s):
            _end_submitted(store, *waiting.pop(future), timeout_s=0)
    except FutureTimeout:  # bounded like a lone step: what has not finished by now fails
        for opened, job_input, submitted in waiting.values():
            _end_submitted(store, opened, job_input, submitted, timeout_s=0)


def _run_step(task: Task, store: JobStore, job_id: str, index: int, lone_message: bool) -> Any:
    """One step; ``lone_message``: its own message (a one-step job's counts as one job per message)."""
    read = _read_plan(task, store, job_id, index)
    if read is None:
        return None
    plan, callback = read
    if lone_message and len(plan.steps) == 1:
        metrics().observations(plan.steps[0].model, {"jobs_per_message": [1]})
    if not plan.is_last(index) and store.has_step_output(job_id, index):
        return index  # done by an earlier delivery of this step (a resent job)
    opened = _begin(task, store, job_id, index, plan, callback)
    if opened is None:
        return None
    with _step_span(opened) as span:
        def run() -> tuple[JobInput, StepRun]:
            if opened.step.is_join:
                return _job_input(opened), _join(store, job_id, opened.step)
            job_input, submitted = _decode_and_submit(store, opened)
            return job_input, _collect(opened.step, submitted, worker_settings().model_timeout_s)

        job_input, run = _guarded(store, opened, run)
        return _complete(store, opened, span, job_input, run)


def _read_plan(task: Task, store: JobStore, job_id: str, index: int) -> tuple[JobPlan, bool] | None:
    try:
        read = store.plan_and_callback(job_id)
    except PlanFormatError as exc:
        read = exc
    return _usable_plan(task, store, job_id, index, read)


def _usable_plan(task: Task, store: JobStore, job_id: str, index: int,
                 read: tuple[JobPlan | None, bool] | PlanFormatError) -> tuple[JobPlan, bool] | None:
    """The job's plan and whether it asked for a callback, as read; None when the job has no
    record. A plan of another version fails its job (``JobFailed``); a step for a model this
    worker does not serve goes back to the queue (``Reject``)."""
    if isinstance(read, PlanFormatError):
        _fail(store, job_id, index, _step_info(task, PlanStep("?", "?", "?"), ""), _outdated(str(read)))
        raise JobFailed(str(read))
    plan, callback = read
    if plan is None:
        logger.info("job {} has no record (expired or never accepted); skipping step {}", job_id, index)
        return None
    model = plan.steps[index].model
    if model not in runtime.SERVED:
        # misrouted (a worker that does not hold this model): put it back for one that does
        raise Reject(f"model {model!r} is not served by this worker", requeue=True)
    return plan, callback


def _guarded(store: JobStore, opened: _Opened, action: Callable[[], Any]) -> Any:
    """``action()``, part of a running step; a failure ends the step's job with its error
    (and raises ``JobFailed``, so Celery sees the task fail too)."""
    try:
        return action()
    except BatcherClosed:
        # the worker is shutting down: the step goes back to the queue for another worker
        raise Reject(f"worker shutting down before job {opened.job_id} ran", requeue=True) from None
    except StepError as exc:
        _fail(store, opened.job_id, opened.index, opened.info, exc.error)
        _release(store, opened.job_id, opened.plan)
        raise JobFailed(exc.error.message) from None
    except Exception as exc:
        logger.exception("job {} failed in step {} ({})", opened.job_id, opened.step.name, opened.step.model)
        error = JobError(f"model {opened.step.model!r} failed on this input: {exc.__class__.__name__}: {exc}",
                         reason="model_error", status=500)
        _fail(store, opened.job_id, opened.index, opened.info, error)
        _release(store, opened.job_id, opened.plan)
        raise JobFailed(error.message) from None


def _job_input(opened: _Opened) -> JobInput:
    job_input = JobInput.decode(opened.raw_input) if opened.raw_input is not None else None
    if job_input is None:
        raise StepError(JobError("the job's input has expired", reason="input_expired", status=500))
    return job_input


def _decode_and_submit(store: JobStore, opened: _Opened) -> tuple[JobInput, _Submitted]:
    job_input = _job_input(opened)
    return job_input, _submit(store, opened.job_id, job_input, opened.step)


def _end_submitted(store: JobStore, opened: _Opened, job_input: JobInput, submitted: _Submitted,
                   timeout_s: float) -> None:
    """A grouped step's output collected and its job ended (or failed: that job only)."""
    with suppress(JobFailed):
        run = _guarded(store, opened, partial(_collect, opened.step, submitted, timeout_s))
        _complete(store, opened, None, job_input, run)


def _complete(store: JobStore, opened: _Opened, span: Span | None, job_input: JobInput, run: StepRun) -> Any:
    """A step whose model call (or join) is done: its output kept for the next step, or the
    job ended with it."""
    job_id, index, step, plan, info = opened.job_id, opened.index, opened.step, opened.plan, opened.info
    last = plan.is_last(index)
    declared = capability(step.capability)

    def encode() -> tuple[StepRun, Encoded]:
        joined = run
        if plan.joins_in_place(index) and declared.join is not None:
            # a job of one part has no join step: its audio is the joined one all the same (faded edges)
            joined = replace(run, output=declared.join([run.output]))
        return joined, declared.encode(joined.output, job_input) if last else declared.pack(joined.output)

    run, encoded = _guarded(store, opened, encode)
    info.update(status="succeeded", finished_at=time.time())
    # one line per execution that ran to success (the chaos tests count them: never two per step)
    logger.info("step ran: job {} step {} ({}) on {}", job_id, index, step.name, info["worker"])
    timings: tuple = ()
    if run.stats is not None:
        info.update(batch_size=run.stats.batch_size, batch_wait_ms=round(run.stats.batch_wait_ms, 2),
                    inference_ms=round(run.stats.inference_ms, 2))
        inference_s = run.stats.inference_ms / 1000
        rtf = inference_s / run.stats.batch_size / run.audio_seconds if run.audio_seconds else None
        timings = (info["queue_wait_ms"] / 1000, inference_s, rtf)
        _trace_batch(span, run)
    if not last:
        store.finish_step(job_id, index, info, encoded)
        if timings:
            metrics().job(step.model, None, *timings)
        return index
    _end(store, job_id, index, info, encoded, plan, opened.callback)
    _release(store, job_id, plan)
    metrics().job(step.model, "succeeded", *timings)
    return encoded.result


def _submit(store: JobStore, job_id: str, job_input: JobInput, step: PlanStep) -> _Submitted:
    """One item to the model's micro-batcher: the step's request (a part's, or the request
    plus the outputs of the earlier steps it reads)."""
    served = runtime.SERVED[step.model]
    settings = worker_settings()
    request = job_input.step_request(step)
    for field_name, source in step.reads.items():
        upstream = store.step_output(job_id, source)
        if upstream is None:
            raise StepError(JobError(f"the output of step {source}, this step's input, has expired",
                                     reason="input_expired", status=500))
        request[field_name] = upstream
    # enforced here, on the decoded audio, whatever the API's header probe believed
    request["max_audio_seconds"] = settings.max_audio_seconds
    try:
        item = served.model.prepare(request)
        submitted_at = time.time()
        return _Submitted(served.batcher.submit(item), item, submitted_at)
    except InputError as exc:
        raise StepError(JobError(exc.message, reason=exc.code, param=exc.param, status=exc.status)) from None


def _collect(step: PlanStep, submitted: _Submitted, timeout_s: float) -> StepRun:
    """The submitted item's output, waited for at most ``timeout_s`` (bounded: a wedged
    batcher must fail its jobs, not hold pool threads forever)."""
    served = runtime.SERVED[step.model]
    try:
        output, stats = submitted.future.result(timeout=timeout_s)
    except InputError as exc:
        raise StepError(JobError(exc.message, reason=exc.code, param=exc.param, status=exc.status)) from None
    except FutureTimeout:
        timeout = worker_settings().model_timeout_s
        raise StepError(JobError(f"model {step.model!r} did not finish this input within "
                                 f"{timeout:g}s", reason="model_timeout", status=500)) from None
    return StepRun(output, stats, served.model.audio_seconds(submitted.item, output), submitted.submitted_at)


@contextmanager
def _step_span(opened: _Opened) -> Iterator[Span | None]:
    """With tracing on: the step's wait in its queue (known only now, so recorded with its
    times) and a ``job.step`` span around its run, both in the job's trace."""
    if not tracing.enabled():
        yield None
        return
    job_id, index, step, info = opened.job_id, opened.index, opened.step, opened.info
    carrier, ready_at = _trace_facts(job_id, index, opened.plan)
    context = tracing.job_context(carrier)
    attributes = {tracing.JOB_ID: job_id, tracing.MODEL: step.model, tracing.STEP: index,
                  "speechfleet.step_name": step.name}
    tracing.span_between("job.queue_wait", ready_at, info["started_at"], attributes, context)
    with tracing.started("job.step", attributes, context) as span:
        yield span


def _trace_facts(job_id: str, index: int, plan: JobPlan) -> tuple[dict | None, float]:
    """The job's trace context, and when this step could first run: when the job was
    created (a first step, a part) or when the last step before it finished."""
    earlier = [] if index in plan.part_steps else [step_field(before) for before in range(index)]
    carrier, created_at, *steps = _records().hmget(job_key(job_id), ["trace", "created_at", *earlier])
    finished = [json.loads(done).get("finished_at") or 0.0 for done in steps if done]
    return json.loads(carrier) if carrier else None, max([float(created_at or 0.0), *finished])


def _trace_batch(span: Span | None, run: StepRun) -> None:
    """The step's wait for its batch to fill and the batched call, inside its ``job.step`` span
    (none for a trace the sampler left out: its span records nothing)."""
    if span is None or not span.is_recording() or run.stats is None or run.submitted_at is None:
        return
    span.set_attribute(tracing.BATCH_SIZE, run.stats.batch_size)
    attributes = {**span.attributes, tracing.BATCH_SIZE: run.stats.batch_size}
    batch_start = run.submitted_at + run.stats.batch_wait_ms / 1000
    tracing.span_between("job.batch_wait", run.submitted_at, batch_start, attributes)
    tracing.span_between("job.inference", batch_start, batch_start + run.stats.inference_ms / 1000, attributes)


@lru_cache
def _records() -> redis.Redis:
    return redis.Redis.from_url(worker_settings().redis_url, decode_responses=True)


def _join(store: JobStore, job_id: str, step: PlanStep) -> StepRun:
    declared = capability(step.capability)
    stored = [store.step_output(job_id, part) for part in step.joins]
    if any(data is None for data in stored):
        raise StepError(JobError("a part's output has expired before the join", reason="input_expired", status=500))
    try:
        return StepRun(declared.join([declared.unpack(data) for data in stored]))
    except Exception as exc:
        logger.exception("joining the parts of job {} failed", job_id)
        raise StepError(JobError(f"assembling the result failed: {exc.__class__.__name__}: {exc}",
                                 reason="join_error", status=500)) from None


def _end(store: JobStore, job_id: str, index: int, info: dict, encoded: Encoded, plan: JobPlan,
         callback: bool | None = None) -> None:
    if encoded.data is not None:
        # before the record says succeeded: readers find it. A streamed job's caller has had
        # its audio sentence by sentence: the whole file is kept only a while
        keep_s = worker_settings().stream_keep_s if plan.streamed else None
        store.put_result_data(job_id, encoded.data, keep_s)
    _notify(store, job_id, store.succeed(job_id, index, info, encoded.result), callback)


def _release(store: JobStore, job_id: str, plan: JobPlan) -> None:
    """What the job's steps kept for each other is given back once the job has ended."""
    store.release_step_outputs(job_id, plan, stream_keep_s=worker_settings().stream_keep_s)


def _step_info(task: Task, step: PlanStep, queue: str) -> dict:
    return {"name": step.name, "model": step.model, "queue": queue, "status": RUNNING,
            "worker": task.request.hostname or socket.gethostname(), "started_at": time.time()}


def _begin(task: Task, store: JobStore, job_id: str, index: int, plan: JobPlan, callback: bool) -> _Opened | None:
    """Mark the job's step running (reading the job's stored input in the same round trip)."""
    step = plan.steps[index]
    info = _step_info(task, step, runtime.SERVED[step.model].config.queue)
    return _opened(store, job_id, index, plan, callback, info, store.start_reading_input(job_id, index, info))


def _opened(store: JobStore, job_id: str, index: int, plan: JobPlan, callback: bool, info: dict,
            start: tuple[str, float | None, bytes | None]) -> _Opened | None:
    """The step that ``start`` marked running; None when it must not run (the job was
    cancelled, ended by an earlier delivery, or its deadline passed: then it is failed here)."""
    status, created_at, raw_input = start
    step = plan.steps[index]
    if status == "expired":
        _fail(store, job_id, index, info, JobError("the job's deadline passed before a worker could start it",
                                                   reason="deadline_exceeded", status=504))
        return None
    if status != RUNNING:
        logger.info("job {} is {}; skipping step {}", job_id, status, step.name)
        # an ended job's step delivered again: the delivery before may have been killed between
        # ending the job and enqueueing its webhook (the delivery task drops a duplicate)
        _notify(store, job_id, status, callback)
        return None
    info["queue_wait_ms"] = round((info["started_at"] - created_at) * 1000, 2)
    return _Opened(job_id, index, step, plan, info, raw_input, callback)


def _fail(store: JobStore, job_id: str, index: int, info: dict, error: JobError) -> None:
    # the worker's own line for every failed step (Celery's "raised expected" line is DEBUG only)
    logger.info("step failed: job {} step {} ({}): {} ({})", job_id, index, info["model"], error.message,
                error.reason or "error")
    info.update(status="failed", finished_at=time.time(), error=error.message)
    _notify(store, job_id, store.fail(job_id, index, info, error))
    metrics().job(info["model"], f"failed:{error.reason or 'error'}")


def _notify(store: JobStore, job_id: str, status: str, callback: bool | None = None) -> None:
    """A job that ended and asked for a callback gets a delivery task (deduplicated there).
    ``callback``: already known from the record (else looked up)."""
    if status in TERMINAL and (store.has_callback(job_id) if callback is None else callback):
        enqueue_delivery(job_id)


def _outdated(detail: str) -> JobError:
    return JobError(f"this job was queued by another speechfleet version and cannot run here ({detail}); "
                    "submit it again", reason="job_format_unsupported", status=503)


def _former_step(self: Task, job_id: str, *args, **kwargs) -> None:
    """A message of the format before job plans: its job fails clearly instead of running
    with a guessed meaning."""
    store = job_store()
    _fail(store, job_id, 0, _step_info(self, PlanStep(self.name, "?", "?"), ""),
          _outdated(f"message {self.name} has no job plan"))
    raise JobFailed(f"job {job_id}: {self.name} messages are no longer run")


for _name in FORMER_STEP_TASKS:
    app.task(name=_name, bind=True, acks_late=True, throws=(JobFailed,))(_former_step)
