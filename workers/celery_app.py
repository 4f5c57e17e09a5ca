"""The Celery application shared by the API (which only sends, by task name) and the
workers (which import ``workers.tasks`` at start-up)."""

import uuid
from collections.abc import Sequence

from celery import Celery, chain, chord

from speechmodels.config import queue_for
from workers.priorities import PRIORITIES
from workers.wire import NEXT_STEP_FIELD

INFER_TASK = "speechfleet.infer"
JOIN_TASK = "speechfleet.join"

app = Celery("speechfleet", include=["workers.tasks", "workers.webhooks"])
app.config_from_object("celeryconfig")


def send_job(celery: Celery, job_id: str, model_name: str, capability: str, step: int = 0,
             priority: str = "normal", parts: int = 0, stages: Sequence[dict] = ()) -> None:
    """Put a job on its model's queue. Messages carry only ids: the input waits in Redis under
    the job (``workers.jobs.input_key``), so a lost message can be sent again.

    A job split into ``parts`` goes as a chord: one task per part (spread over every worker of
    the model), then a join task once all are done. ``stages`` (post-generation filters:
    ``{"model", "capability"}``) follow as a chain, each on its own model's queue, each taking
    the outputs of the steps before. Steps are numbered in that order: parts, join, stages.
    Task ids are ``<job>:<nonce>:<step>`` (a plain one-step job keeps the job id), so a resent
    pipeline is counted afresh, and the lost-job sweeper still finds the job by prefix.

    ``ignore_result``: the sender must not subscribe to a result channel per task (results are
    read from job records). Chord parts are still counted: the Redis backend counts a part
    when it returns, whether or not its result is stored.
    """
    def options(model: str) -> dict:
        return {"queue": queue_for(model), "priority": PRIORITIES[priority], "ignore_result": True}

    if not parts and not stages:
        celery.send_task(INFER_TASK, args=(job_id, model_name, capability, step), task_id=job_id,
                         **options(model_name))
        return
    nonce = uuid.uuid4().hex[:8]
    head_step = parts if parts else 0  # the step whose output the first stage reads

    def task(name: str, model: str, cap: str, at: int, **kwargs):
        return celery.signature(name, args=(job_id, model, cap, at), kwargs=kwargs, immutable=True,
                                task_id=f"{job_id}:{nonce}:{at}", **options(model))

    # every stage reads the outputs of all pipeline steps before it, each as the request field
    # of its capability (later ones win): a tone converter after a synthesiser takes the
    # synthesiser's audio and the embedding of the encoder two steps back
    produced = [[head_step, NEXT_STEP_FIELD[capability]]]
    filters = []
    for index, stage in enumerate(stages):
        at = head_step + 1 + index
        filters.append(task(INFER_TASK, stage["model"], stage["capability"], at, sources=list(produced),
                            final=index == len(stages) - 1))
        produced.append([at, NEXT_STEP_FIELD[stage["capability"]]])
    if not parts:
        chain(task(INFER_TASK, model_name, capability, 0, final=False), *filters, app=celery).apply_async()
        return
    header = [task(INFER_TASK, model_name, capability, part, part=part, final=False) for part in range(parts)]
    join = task(JOIN_TASK, model_name, capability, parts, final=not stages)
    chord(header, app=celery)(chain(join, *filters, app=celery) if filters else join)
    # the chord's group barrier subscribes the sender to each part's result channel, though
    # no result is ever published there (parts ignore results): drop those subscriptions now
    consumer = getattr(celery.backend, "result_consumer", None)
    if consumer is not None:
        for signature in header:
            consumer.cancel_for(signature.id)


def job_id_of_task(task_id: str) -> str:
    """The job a task belongs to (a chord's tasks carry the job id as their id's prefix)."""
    return task_id.partition(":")[0]
