"""The Celery application shared by the API (which only sends, by task name) and the
workers (which import ``workers.tasks`` at start-up)."""

from celery import Celery

INFER_TASK = "speechfleet.infer"

app = Celery("speechfleet", include=["workers.tasks"])
app.config_from_object("celeryconfig")
