"""OpenTelemetry traces, one per job, from the HTTP request through the queues to the webhook.

Off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (the standard variable; the OTLP/HTTP
exporter reads it and the other ``OTEL_EXPORTER_OTLP_*`` settings itself). Off, every helper
here returns at its first line and nothing is instrumented, so tracing costs nothing.

A job's trace context is captured once, when the API accepts it, and kept on the job record
(``JobRecord.trace``) as a W3C ``traceparent`` carrier. The job's messages carry it in their
headers, and whoever sends the job again later (the lost-job sweeper) sends it again with
the record's context, so a resent step still joins the job's trace. Workers parent their
spans to the Celery task span when it is in the job's trace, else to the record's context.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

API_SERVICE = "speechfleet-api"
WORKER_SERVICE = "speechfleet-worker"
ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"

# span attribute names
JOB_ID, MODEL, BATCH_SIZE, STEP = "speechfleet.job_id", "speechfleet.model", "speechfleet.batch_size", "speechfleet.step"

#: the process's provider; None while tracing is off
_provider: TracerProvider | None = None


def enabled() -> bool:
    return _provider is not None


def provider() -> TracerProvider | None:
    return _provider


def setup(service: str) -> bool:
    """Turn tracing on for this process when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (once;
    later calls keep the first provider, a test's in-memory one included). Returns whether
    tracing is on."""
    global _provider
    if _provider is not None:
        return True
    if not os.environ.get(ENDPOINT_ENV):
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    tracer_provider = _new_provider(service)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # flushed at exit by the SDK
    _provider = tracer_provider
    return True


def install_memory_exporter(service: str = "speechfleet-test") -> InMemorySpanExporter:
    """Test hook: tracing on in this process, every span handed at once to the returned
    in-memory exporter (``get_finished_spans()``). Undo with ``reset()``."""
    global _provider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    _provider = _new_provider(service)
    _provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def reset() -> None:
    """Tracing off again (tests)."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
    _provider = None


def _new_provider(service: str) -> TracerProvider:
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider

    # OTEL_SERVICE_NAME, when set, still wins (Resource.create reads it)
    return TracerProvider(resource=Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service)}))


def tracer() -> trace.Tracer:
    return trace.get_tracer("speechfleet", tracer_provider=_provider)


def current_carrier() -> dict[str, str] | None:
    """The current context as W3C headers (``traceparent``), to keep on a job record; None
    while tracing is off or no span is current."""
    if _provider is None or not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier or None


def job_context(carrier: Mapping[str, str] | None) -> otel_context.Context | None:
    """The context a job's span starts in: the current one when it already belongs to the
    job's trace (a Celery task span from the message's headers), else the job's own from its
    record (a message sent without it); None when tracing is off or the job has none."""
    if _provider is None or not carrier:
        return None
    recorded = extract(carrier)
    current = trace.get_current_span().get_span_context()
    if current.is_valid and current.trace_id == trace.get_current_span(recorded).get_span_context().trace_id:
        return otel_context.get_current()
    return recorded


@contextmanager
def attached(carrier: Mapping[str, str] | None) -> Iterator[None]:
    """The job's context made current for a while (sending its messages from a thread with no
    span of the job, as the sweeper does: an instrumented publisher then joins the job's trace)."""
    context = job_context(carrier)
    if context is None:
        yield
        return
    token = otel_context.attach(context)
    try:
        yield
    finally:
        otel_context.detach(token)


@contextmanager
def started(name: str, attributes: Mapping[str, Any], context: otel_context.Context | None = None
            ) -> Iterator[trace.Span | None]:
    """A span around a block, current inside it (None, and nothing made, while tracing is off)."""
    if _provider is None:
        yield None
        return
    with tracer().start_as_current_span(name, context=context, attributes=dict(attributes)) as span:
        yield span


def span_between(name: str, start_s: float, end_s: float, attributes: Mapping[str, Any],
                 context: otel_context.Context | None = None) -> None:
    """A span for something measured rather than run here (a wait in a queue), from its
    start and end wall-clock times (seconds)."""
    if _provider is None:
        return
    span = tracer().start_span(name, context=context, attributes=dict(attributes), start_time=_ns(start_s))
    span.end(end_time=_ns(max(start_s, end_s)))


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)
