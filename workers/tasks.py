"""The one inference task: any model, any capability, routed to the ``model.<name>`` queue."""

from __future__ import annotations

import socket
import time
from concurrent.futures import TimeoutError as FutureTimeout
from functools import lru_cache

import redis
from celery import Task
from celery.exceptions import Reject
from loguru import logger

from speechmodels import InputError
from workers import runtime
from workers.assembly import JOINERS
from workers.batcher import BatcherClosed
from workers.celery_app import INFER_TASK, JOIN_TASK, app
from workers.jobs import (
    RUNNING,
    TERMINAL,
    JobError,
    WorkerJobStore,
    part_request,
    shared_fields,
)
from workers.metrics import WorkerMetrics
from workers.settings import get_settings
from workers.webhooks import enqueue_delivery
from workers.wire import Encoded, encode_result, pack_intermediate, unpack_intermediate


@lru_cache
def metrics() -> WorkerMetrics:
    return WorkerMetrics(redis.Redis.from_url(get_settings().redis_url))


@lru_cache
def job_store() -> WorkerJobStore:
    settings = get_settings()
    return WorkerJobStore(settings.redis_url, settings.job_ttl_s)


class JobFailed(Exception):
    """Raised after the failure is recorded on the job, so Celery (and Flower, and a chain)
    see the task as failed too."""


@app.task(name=INFER_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, throws=(JobFailed,))
def infer(self: Task, job_id: str, model_name: str, capability: str, step: int = 0, part: int | None = None,
          sources: list[list] | None = None, final: bool = True, source: int | None = None,
          source_field: str = "audio"):
    """Run one step of a job through the model's micro-batcher.

    The step's input is the job's request, or with ``part`` one part of it (a sentence of a
    long text), or with ``sources`` (``[step, field]`` pairs) the request plus what earlier
    steps produced, each as its field (the audio for a post-generation filter, the mel for a
    vocoder). A ``final`` step ends the job with its result; any other stores its output for
    the steps after it (the join, the next filter).
    """
    if source is not None and sources is None:
        sources = [[source, source_field]]  # a message sent before steps read every earlier output
    served = runtime.SERVED.get(model_name)
    if served is None:
        # misrouted (a worker that does not hold this model): put it back for one that does
        raise Reject(f"model {model_name!r} is not served by this worker", requeue=True)
    store = job_store()
    if not final and store.has_part(job_id, step):
        return step  # done by an earlier delivery of this step (a resent pipeline)
    info = _begin(self, store, job_id, step, model_name, served.config.queue, name=_step_name(model_name, part))
    if info is None:
        return None
    settings = get_settings()
    try:
        payload = store.input(job_id)
        request = _step_request(store, job_id, payload, part, sources)
        # enforced here, on the decoded audio, whatever the API's header probe believed
        request["max_audio_seconds"] = settings.max_audio_seconds
        item = served.model.prepare(request)
        # bounded: a wedged batcher must fail its jobs, not hold pool threads forever
        output, stats = served.batcher.submit(item).result(timeout=settings.visibility_timeout_s)
        encoded = encode_result(capability, output, request) if final else pack_intermediate(capability, output)
    except BatcherClosed:
        # the worker is shutting down: the job goes back to the queue for another worker
        raise Reject(f"worker shutting down before job {job_id} ran", requeue=True) from None
    except InputError as exc:
        _fail(store, job_id, step, info, JobError(exc.message, reason=exc.code, param=exc.param, status=exc.status))
        raise JobFailed(exc.message) from None
    except FutureTimeout:
        error = JobError(f"model {model_name!r} did not finish this input within {settings.visibility_timeout_s:g}s",
                         reason="model_timeout", status=500)
        _fail(store, job_id, step, info, error)
        raise JobFailed(error.message) from None
    except Exception as exc:
        logger.exception("job {} failed in model {}", job_id, model_name)
        error = JobError(f"model {model_name!r} failed on this input: {exc.__class__.__name__}: {exc}",
                         reason="model_error", status=500)
        _fail(store, job_id, step, info, error)
        raise JobFailed(error.message) from None
    info.update(status="succeeded", finished_at=time.time(), batch_size=stats.batch_size,
                batch_wait_ms=round(stats.batch_wait_ms, 2), inference_ms=round(stats.inference_ms, 2))
    audio_s = served.model.audio_seconds(item, output)
    rtf = stats.inference_ms / 1000 / stats.batch_size / audio_s if audio_s else None
    timings = (info["queue_wait_ms"] / 1000, stats.inference_ms / 1000, rtf)
    if not final:
        store.finish_part(job_id, step, info, encoded)
        metrics().job(model_name, None, *timings)
        return step
    _end(store, job_id, step, info, encoded)
    metrics().job(model_name, "succeeded", *timings)
    return encoded.result


@app.task(name=JOIN_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, throws=(JobFailed,))
def join_parts(self: Task, job_id: str, model_name: str, capability: str, step: int, final: bool = True):
    """The chord's last step: join the parts' outputs (steps 0..step-1) into one, and end the
    job with it (or, when filters follow, store it for them)."""
    store = job_store()
    if not final and store.has_part(job_id, step):
        return step
    served = runtime.SERVED.get(model_name)
    info = _begin(self, store, job_id, step, model_name, served.config.queue if served else "", name="join")
    if info is None:
        return None
    try:
        payload = store.input(job_id)
        stored = [store.part(job_id, part) for part in range(step)]
        if payload is None or any(data is None for data in stored):
            raise LookupError("the job's input or a part's output has expired")
        joined = JOINERS[capability]([unpack_intermediate(capability, data) for data in stored])
        encoded = encode_result(capability, joined, payload) if final else pack_intermediate(capability, joined)
    except Exception as exc:
        logger.exception("joining the parts of job {} failed", job_id)
        error = JobError(f"assembling the result failed: {exc.__class__.__name__}: {exc}", reason="join_error",
                         status=500)
        _fail(store, job_id, step, info, error)
        raise JobFailed(error.message) from None
    info.update(status="succeeded", finished_at=time.time())
    if not final:
        store.finish_part(job_id, step, info, encoded)
        return step
    _end(store, job_id, step, info, encoded)
    metrics().job(model_name, "succeeded")
    return None


def _step_request(store: WorkerJobStore, job_id: str, payload: dict | None, part: int | None,
                  sources: list[list] | None) -> dict:
    if payload is None:
        raise LookupError("the job's input has expired")
    if part is not None:
        return part_request(payload, part)
    if not sources:
        return payload
    # the request's own fields (a synthesiser after an encoder still needs the text; the last
    # step needs the output options), then the earlier steps' outputs
    request = shared_fields(payload)
    for source, field_name in sources:
        upstream = store.part(job_id, source)
        if upstream is None:
            raise LookupError(f"the output of step {source}, this step's input, has expired")
        request[field_name] = upstream
    return request


def _end(store: WorkerJobStore, job_id: str, step: int, info: dict, encoded: Encoded) -> None:
    if encoded.data is not None:
        store.put_output(job_id, encoded.data)  # before the record says succeeded: readers find it
    _notify(store, job_id, store.succeed(job_id, step, info, encoded.result))


def _step_name(model_name: str, part: int | None) -> str:
    return model_name if part is None else f"{model_name}[{part}]"


def _begin(task: Task, store: WorkerJobStore, job_id: str, step: int, model_name: str, queue: str,
           name: str) -> dict | None:
    """Mark the job's step running; None when the step must not run (the job was cancelled,
    ended by an earlier delivery, or its deadline passed: then it is failed here)."""
    started = time.time()
    info = {"name": name, "model": model_name, "queue": queue, "status": RUNNING,
            "worker": task.request.hostname or socket.gethostname(), "started_at": started}
    status, created_at = store.start(job_id, step, info)
    if status == "expired":
        _fail(store, job_id, step, info, JobError("the job's deadline passed before a worker could start it",
                                                  reason="deadline_exceeded", status=504))
        return None
    if status != RUNNING:
        logger.info("job {} is {}; skipping step {}", job_id, status, step)
        return None
    info["queue_wait_ms"] = round((started - created_at) * 1000, 2)
    return info


def _fail(store: WorkerJobStore, job_id: str, step: int, info: dict, error: JobError) -> None:
    info.update(status="failed", finished_at=time.time(), error=error.message)
    _notify(store, job_id, store.fail(job_id, step, info, error))
    metrics().job(info["model"], f"failed:{error.reason or 'error'}")


def _notify(store: WorkerJobStore, job_id: str, status: str) -> None:
    """A job that ended and asked for a callback gets a delivery task (deduplicated there)."""
    if status in TERMINAL and store.has_callback(job_id):
        enqueue_delivery(job_id)
