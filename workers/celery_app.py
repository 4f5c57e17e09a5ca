"""The Celery application shared by the API (which only sends, by task name; see
``workers.canvas``) and the workers (which import the task modules at start-up)."""

from celery import Celery, signals

#: one job step (any model, any capability); args: job id, step index in the job's plan
STEP_TASK = "speechfleet.step"
#: the first (only) steps of several one-step jobs of one model, sent as one message; args: job ids
STEP_GROUP_TASK = "speechfleet.steps"
#: the task names of the message format before job plans (one job step per model call,
#: described by the message itself); such a message fails its job with a clear error
FORMER_STEP_TASKS = ("speechfleet.infer", "speechfleet.join")
WEBHOOK_TASK = "speechfleet.deliver_webhook"
WEBHOOK_QUEUE = "webhooks"

app = Celery("speechfleet", include=["workers.tasks", "workers.webhooks"])
app.config_from_object("celeryconfig")


@signals.worker_init.connect(weak=False)
def _trace_worker(**_) -> None:
    """With OTEL_EXPORTER_OTLP_ENDPOINT set, every task runs in a span continuing the trace its
    message's headers carry, and the messages it sends (the next step, a webhook) carry it on."""
    from jobcontract import tracing

    if tracing.setup(tracing.WORKER_SERVICE):
        from opentelemetry.instrumentation.celery import CeleryInstrumentor

        CeleryInstrumentor().instrument(tracer_provider=tracing.provider())
