"""One trace per job: the API (in this process, through its ASGI app) and a Celery worker (in
this process too, on a real Redis, with real Silero VAD) hand their spans to an in-memory
exporter; a job's spans, from the HTTP request through its queue, batch and step to its
webhook, share one trace id and nest in that order. A job the lost-job sweeper sends again
stays in its trace."""

import time

import pytest
import redis
import yaml
from celery.contrib.testing.worker import start_worker
from fastapi.testclient import TestClient
from opentelemetry import trace

from api.app import create_app
from jobcontract import tracing
from jobcontract.keys import job_key
from jobcontract.payload import AudioOutput, JobInput
from jobcontract.plan import JobPlan
from jobcontract.settings import APISettings, api_settings, fleet_settings, worker_settings
from speechmodels import ModelConfig, load_model
from speechmodels.registry import AUDIO_CONVERSION, VAD
from tests.conftest import b64_audio
from tests.fleet import TEST_ENV, create_job, fixture_audio, single_step_plan
from tests.workers.test_webhooks import Receiver
from workers import runtime, tasks, webhooks
from workers.batcher import MicroBatcher
from workers.canvas import send_job
from workers.celery_app import WEBHOOK_QUEUE, app
from workers.liveness import Heartbeat
from workers.recovery import LostJobSweeper

MODEL = ModelConfig(name="traced-vad", model="package:silero_vad", model_type="SileroVAD", max_batch_size=4)
DENOISER = ModelConfig(name="traced-rnnoise", model="package:pyrnnoise", model_type="RNNoiseDenoiser", max_batch_size=2)
CACHED = (worker_settings, fleet_settings, api_settings, tasks.job_store, tasks.metrics, tasks._records,
          webhooks._client)


@pytest.fixture(scope="module")
def traced(private_redis, tmp_path_factory):
    """Tracing on (in memory), the model served by an in-process worker that also delivers
    webhooks, and the API app; yields (exporter, API client, webhook receiver, redis)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("REDIS_URL", private_redis.url)
    for name in ("SPEECHFLEET_WEBHOOK_SECRET", "SPEECHFLEET_WEBHOOK_ALLOW_PRIVATE"):
        patch.setenv(name, TEST_ENV[name])
    for cached in CACHED:
        cached.cache_clear()
    saved = {key: app.conf[key] for key in ("broker_url", "result_backend")}
    app.close()
    app.conf.update(broker_url=private_redis.url, result_backend=private_redis.url)
    exporter = tracing.install_memory_exporter()
    for served in (MODEL, DENOISER):
        model = load_model(served)
        runtime.SERVED[served.name] = runtime.ServedModel(served, model, MicroBatcher(
            model.infer_batch, max_batch_size=served.max_batch_size, max_wait_ms=5, name=served.name))
    client = redis.Redis.from_url(private_redis.url, decode_responses=True)
    heartbeat = Heartbeat(client, "traced-worker", [MODEL.name], interval_s=2.0, ttl_s=6.0)
    config = tmp_path_factory.mktemp("traced") / "config.yml"
    config.write_text(yaml.safe_dump({"model_configs": [MODEL.model_dump(include={"name", "model", "model_type"})]}))
    receiver = Receiver()
    try:
        with start_worker(app, pool="threads", concurrency=4, queues=[MODEL.queue, DENOISER.queue, WEBHOOK_QUEUE],
                          perform_ping_check=False, loglevel="WARNING"):
            heartbeat.start()
            with TestClient(create_app(APISettings(config=config))) as api:
                yield exporter, api, receiver, client
    finally:
        heartbeat.stop()
        receiver.server.shutdown()
        for served in (MODEL, DENOISER):
            runtime.SERVED.pop(served.name).batcher.close()
        from opentelemetry.instrumentation.celery import CeleryInstrumentor

        CeleryInstrumentor().uninstrument()
        tracing.reset()
        app.close()
        app.conf.update(saved)
        patch.undo()
        for cached in CACHED:
            cached.cache_clear()


def spans_of(exporter, trace_id: int) -> dict[str, list]:
    found: dict[str, list] = {}
    for span in exporter.get_finished_spans():
        if span.context.trace_id == trace_id:
            found.setdefault(span.name, []).append(span)
    return found


def ancestry(span, by_id: dict) -> list[str]:
    """The names from a span up to its trace's root."""
    names = [span.name]
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


def wait_for_spans(exporter, trace_id: int, *names: str, timeout_s: float = 30):
    """The trace's spans once all of ``names`` have ended (a parent ends after its children)."""
    deadline = time.monotonic() + timeout_s
    while not set(names) <= set(spans_of(exporter, trace_id)):
        assert time.monotonic() < deadline, sorted(spans_of(exporter, trace_id))
        time.sleep(0.05)
    return spans_of(exporter, trace_id)


def test_tracing_is_off_without_an_endpoint(monkeypatch):
    monkeypatch.delenv(tracing.ENDPOINT_ENV, raising=False)
    assert tracing.setup(tracing.API_SERVICE) is False and not tracing.enabled()
    with tracing.started("job.submit", {tracing.JOB_ID: "x"}) as span:
        assert span is None and tracing.current_carrier() is None
    assert tracing.job_context({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}) is None
    monkeypatch.setenv(tracing.ENDPOINT_ENV, "http://127.0.0.1:4318")
    try:
        assert tracing.setup(tracing.WORKER_SERVICE) is True
        assert tracing.provider().resource.attributes["service.name"] == tracing.WORKER_SERVICE
    finally:
        tracing.reset()


def test_one_job_is_one_trace_from_the_request_to_its_webhook(traced):
    exporter, api, receiver, _ = traced
    response = api.post("/v1/audio/vad", json={"model": MODEL.name, "input_audio": b64_audio("jfk.flac"),
                                               "callback_url": f"{receiver.url}/hook"})
    assert response.status_code == 200 and response.json()["speech_activity"] is True, response.text
    job_id = response.json()["id"]
    assert receiver.for_job(job_id, 1)
    (submit,) = [span for span in exporter.get_finished_spans()
                 if span.name == "job.submit" and span.attributes[tracing.JOB_ID] == job_id]
    spans = wait_for_spans(exporter, submit.context.trace_id, "webhook.deliver", "run/speechfleet.deliver_webhook",
                           "apply_async/speechfleet.deliver_webhook", "job.step", "run/speechfleet.step",
                           "apply_async/speechfleet.step", "POST /v1/audio/vad")
    (server,) = [span for span in spans.get("POST /v1/audio/vad", []) if span.kind == trace.SpanKind.SERVER]
    (queue_wait,), (step,) = spans["job.queue_wait"], spans["job.step"]
    (batch_wait,), (inference,), (delivery,) = spans["job.batch_wait"], spans["job.inference"], spans["webhook.deliver"]
    for span in (queue_wait, step, batch_wait, inference, delivery):
        assert span.attributes[tracing.JOB_ID] == job_id and span.attributes[tracing.MODEL] == MODEL.name
    assert step.attributes[tracing.STEP] == 0 and step.attributes[tracing.BATCH_SIZE] == 1
    assert batch_wait.attributes[tracing.BATCH_SIZE] == 1
    assert delivery.attributes["http.response.status_code"] == 200
    # in order: request, submission, wait in the queue, the step (batch wait, then the model), the webhook
    assert server.start_time <= submit.start_time <= queue_wait.start_time <= queue_wait.end_time <= step.start_time
    assert step.start_time <= batch_wait.start_time <= batch_wait.end_time <= inference.start_time
    assert inference.end_time <= step.end_time and inference.end_time <= delivery.start_time
    # and nested: the webhook hangs off the step that ended the job, the step off the submission
    by_id = {span.context.span_id: span for group in spans.values() for span in group}
    chain = ancestry(delivery, by_id)
    assert [name for name in chain if name in ("webhook.deliver", "job.step", "job.submit", server.name)] == \
        ["webhook.deliver", "job.step", "job.submit", server.name], chain
    assert ancestry(queue_wait, by_id)[1:3] == ["run/speechfleet.step", "apply_async/speechfleet.step"]
    assert not any(span.name.startswith("GET /ready") for span in exporter.get_finished_spans())


def test_a_job_the_sweeper_sends_again_stays_in_its_trace(traced):
    """A two-step chain whose messages were lost: both steps, sent again by the sweeper, are in
    the job's trace, the second step's queue wait starting when the first recorded its end."""
    exporter, _, _, client = traced
    with tracing.tracer().start_as_current_span("origin") as origin:
        carrier = tracing.current_carrier()
    plan = JobPlan.build(DENOISER.name, AUDIO_CONVERSION, [(DENOISER.name, AUDIO_CONVERSION)] * 2)
    create_job(client, "traced-lost", plan, JobInput({"audio": fixture_audio("jfk.flac")}, output=AudioOutput("flac")),
               age_s=100, trace=carrier)
    sweeper = LostJobSweeper(client, app, "trace-test", quiet_after_s=30, interval_s=60)
    assert sweeper.sweep() == ["traced-lost"]  # its messages were lost: sent again from its record
    trace_id = origin.get_span_context().trace_id
    deadline = time.monotonic() + 30
    while len(spans_of(exporter, trace_id).get("job.step", [])) < 2:
        assert time.monotonic() < deadline, sorted(spans_of(exporter, trace_id))
        time.sleep(0.05)
    spans = spans_of(exporter, trace_id)
    first, second = sorted(spans["job.step"], key=lambda span: span.attributes[tracing.STEP])
    assert first.attributes[tracing.JOB_ID] == second.attributes[tracing.JOB_ID] == "traced-lost"
    (waited,) = [span for span in spans["job.queue_wait"] if span.attributes[tracing.STEP] == 1]
    # from the moment step 0 recorded its end (inside its span), to step 1's start
    assert first.start_time < waited.start_time <= first.end_time and waited.end_time <= second.start_time
    assert client.hget(job_key("traced-lost"), "status") == "succeeded"


def test_a_job_whose_trace_was_not_sampled_runs_as_any_other(traced):
    """A sampler that leaves a trace out (``traceparent`` flags 00) makes spans that record
    nothing; the job's steps must run the same."""
    _, _, _, client = traced
    unsampled = {"traceparent": "00-1af7651916cd43dd8448eb211c80319c-c7ad6b7169203331-00"}
    create_job(client, "traced-unsampled", single_step_plan(MODEL.name, VAD),
               JobInput({"audio": fixture_audio("jfk.flac"), "get_timestamps": True}), trace=unsampled)
    send_job(app, "traced-unsampled", single_step_plan(MODEL.name, VAD), trace=unsampled)
    deadline = time.monotonic() + 30
    while client.hget(job_key("traced-unsampled"), "status") in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert client.hget(job_key("traced-unsampled"), "status") == "succeeded"
