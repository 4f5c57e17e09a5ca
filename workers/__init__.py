"""Celery side of speechfleet: the Celery app, the per-model inference task, the
micro-batcher, job records and worker liveness."""
