"""Sending work: a job's plan as a Celery canvas on its models' queues, and a webhook
delivery on the ``webhooks`` queue. The only part of ``workers`` the API imports."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from celery import Celery, chain, chord

from jobcontract import tracing
from jobcontract.plan import JobPlan
from jobcontract.priorities import PRIORITIES
from speechmodels.config import queue_for
from workers.celery_app import STEP_GROUP_TASK, STEP_TASK, WEBHOOK_QUEUE, WEBHOOK_TASK, app

#: between the job ids of a message that carries several jobs (job ids are hex: never in one)
GROUP_SEPARATOR = "+"


def send_job(celery: Celery, job_id: str, plan: JobPlan, priority: str = "normal",
             trace: Mapping[str, str] | None = None) -> None:
    """Put a job's steps on their models' queues. Messages carry only the job id and the
    step's index: the plan is on the job record and the input beside it, so a lost message
    can be sent again from the record alone.

    A one-step job is one task whose id is the job id. Otherwise the steps go as a chain,
    or, when the plan has part steps, as a chord: the parts in parallel (spread over every
    worker of the model), then the join and the steps after it in order. Task ids are
    ``<job>:<nonce>:<step>``, so a resent job is counted afresh and the lost-job sweeper
    still finds the job by the prefix.

    ``trace``, the job's trace context from its record, rides in every message's headers (the
    worker's task span continues it), and is current while sending, so an instrumented
    sender's publish spans join the job's trace too.

    ``ignore_result``: the sender must not subscribe to a result channel per task (results are
    read from job records). Chord parts are still counted: the Redis backend counts a part
    when it returns, whether or not its result is stored.
    """
    with tracing.attached(trace):
        _send(celery, job_id, plan, priority, dict(trace) if trace else None)


def _options(model: str, priority: str, headers: dict[str, str] | None = None) -> dict:
    sent = {"queue": queue_for(model), "priority": PRIORITIES[priority], "ignore_result": True}
    return {**sent, "headers": dict(headers)} if headers else sent


def _send(celery: Celery, job_id: str, plan: JobPlan, priority: str, headers: dict[str, str] | None) -> None:
    def options(model: str) -> dict:
        return _options(model, priority, headers)

    if len(plan.steps) == 1:
        _send_one_step(celery, job_id, options(plan.steps[0].model))
        return
    nonce = uuid.uuid4().hex[:8]
    signatures = [celery.signature(STEP_TASK, args=(job_id, index), immutable=True, task_id=f"{job_id}:{nonce}:{index}",
                                   **options(step.model)) for index, step in enumerate(plan.steps)]
    parts = plan.part_steps
    if not parts:
        chain(*signatures, app=celery).apply_async()
        return
    if parts != list(range(len(parts))):
        raise ValueError("a plan's part steps must come first")
    header, rest = signatures[:len(parts)], signatures[len(parts):]
    chord(header, app=celery)(chain(*rest, app=celery) if len(rest) > 1 else rest[0])
    # the chord's group barrier subscribes the sender to each part's result channel, though
    # no result is ever published there (parts ignore results): drop those subscriptions now
    consumer = getattr(celery.backend, "result_consumer", None)
    if consumer is not None:
        for signature in header:
            consumer.cancel_for(signature.id)


def send_one_step_jobs(celery: Celery, job_ids: Sequence[str], model: str, priority: str = "normal") -> None:
    """Put several one-step jobs of one model and priority on its queue as one message, run as
    one task (``workers.tasks.run_steps``): each job's item goes to the model's batcher before
    any is waited on, so they batch together, and the fleet pays one message's costs (publish,
    fetch, ack, claim) instead of one per job. Only untraced jobs go this way (a message has
    one set of headers).

    The task id lists the job ids, ``<job>+<job>+...`` (``job_ids_of_task``): the lost-job
    sweeper and claim recovery find every job of a message from it, as they find a lone
    job's from its id."""
    if len(job_ids) == 1:
        _send_one_step(celery, job_ids[0], _options(model, priority))
        return
    celery.send_task(STEP_GROUP_TASK, args=(list(job_ids),), task_id=GROUP_SEPARATOR.join(job_ids), result_cls=_Sent,
                     **_options(model, priority))


def _send_one_step(celery: Celery, job_id: str, options: dict) -> None:
    """A one-step job's message on its own: its task id is the job id."""
    celery.send_task(STEP_TASK, args=(job_id, 0), task_id=job_id, result_cls=_Sent, **options)


class _Sent:
    """What ``send_task`` hands back for a one-step job: no ``AsyncResult``, whose
    construction looks up the result backend, built once per thread (the API sends from a
    thread pool: each new thread would load the backend's entry points again), for a result
    nobody reads (results are on job records)."""

    def __init__(self, task_id: str):
        self.id = task_id
        self.ignored = True


def job_ids_of_task(task_id: str) -> list[str]:
    """The jobs a task belongs to: a multi-step job's tasks carry the job id as their id's
    prefix, a message of several one-step jobs lists them all."""
    return [part.partition(":")[0] for part in task_id.split(GROUP_SEPARATOR)]


def enqueue_delivery(job_id: str) -> None:
    """Deliver the webhook of a job that ended (deduplicated by the delivery task)."""
    app.send_task(WEBHOOK_TASK, args=(job_id,), queue=WEBHOOK_QUEUE, ignore_result=True)
