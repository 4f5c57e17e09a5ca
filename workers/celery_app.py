"""The Celery application shared by the API (which only sends, by task name) and the
workers (which import ``workers.tasks`` at start-up)."""

import uuid

from celery import Celery, chord

from speechmodels.config import queue_for
from workers.priorities import PRIORITIES

INFER_TASK = "speechfleet.infer"
JOIN_TASK = "speechfleet.join"

app = Celery("speechfleet", include=["workers.tasks", "workers.webhooks"])
app.config_from_object("celeryconfig")


def send_job(celery: Celery, job_id: str, model_name: str, capability: str, step: int = 0,
             priority: str = "normal", parts: int = 0) -> None:
    """Put a job on its model's queue. Messages carry only ids: the input waits in Redis under
    the job (``workers.jobs.input_key``), so a lost message can be sent again.

    A job split into ``parts`` goes as a chord: one task per part (spread over every worker of
    the model), then a join task once all are done. Task ids are ``<job>:<nonce>:<part>``, so
    a resent chord is counted afresh, and the lost-job sweeper still finds the job by prefix.

    ``ignore_result``: the sender must not subscribe to a result channel per task (results are
    read from job records). Chord parts are still counted: the Redis backend counts a part
    when it returns, whether or not its result is stored.
    """
    options = {"queue": queue_for(model_name), "priority": PRIORITIES[priority], "ignore_result": True}
    if not parts:
        celery.send_task(INFER_TASK, args=(job_id, model_name, capability, step), task_id=job_id, **options)
        return
    nonce = uuid.uuid4().hex[:8]
    header = [celery.signature(INFER_TASK, args=(job_id, model_name, capability, part, part), immutable=True,
                               task_id=f"{job_id}:{nonce}:{part}", **options) for part in range(parts)]
    join = celery.signature(JOIN_TASK, args=(job_id, model_name, capability, parts), immutable=True,
                            task_id=f"{job_id}:{nonce}:join", **options)
    chord(header, app=celery)(join)
    # the chord's group barrier subscribes the sender to each part's result channel, though
    # no result is ever published there (parts ignore results): drop those subscriptions now
    consumer = getattr(celery.backend, "result_consumer", None)
    if consumer is not None:
        for signature in header:
            consumer.cancel_for(signature.id)


def job_id_of_task(task_id: str) -> str:
    """The job a task belongs to (a chord's tasks carry the job id as their id's prefix)."""
    return task_id.partition(":")[0]
