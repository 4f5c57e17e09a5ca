"""The Celery application shared by the API (which only sends, by task name) and the
workers (which import ``workers.tasks`` at start-up)."""

from celery import Celery

from speechmodels.config import queue_for
from workers.priorities import PRIORITIES

INFER_TASK = "speechfleet.infer"

app = Celery("speechfleet", include=["workers.tasks", "workers.webhooks"])
app.config_from_object("celeryconfig")


def send_job(celery: Celery, job_id: str, model_name: str, capability: str, step: int = 0,
             priority: str = "normal") -> None:
    """Put a job's step on its model's queue. The message carries only ids: the input waits in
    Redis under the job (``workers.jobs.input_key``), so a lost message can be sent again.

    ``ignore_result``: the sender must not subscribe to a result channel per task (results are
    read from job records), and the worker need not store them twice.
    """
    celery.send_task(INFER_TASK, args=(job_id, model_name, capability, step), task_id=job_id,
                     queue=queue_for(model_name), ignore_result=True, priority=PRIORITIES[priority])
