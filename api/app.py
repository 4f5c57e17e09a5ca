"""The app factory: everything the routes need is built once in the lifespan and kept on
``app.state``."""

from __future__ import annotations

from contextlib import asynccontextmanager

import redis.asyncio as aioredis
import redis.exceptions
from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from api.access import AccessControl
from api.catalog import ModelCatalog
from api.dispatch import JobDispatcher
from api.errors import install_error_handlers
from api.events import JobEvents
from api.middleware import BodySizeLimit, RequestId
from api.routes import (
    convert,
    diarization,
    embed,
    fleet,
    health,
    jobs,
    metrics,
    models,
    playground,
    realtime,
    speech,
    transcriptions,
    vad,
    voice,
    voices,
)
from jobcontract import tracing
from jobcontract.async_store import BULK_BYTES_PER_S, AsyncJobStore
from jobcontract.settings import APISettings, api_settings
from speechmodels import load_model_configs


def create_app(settings: APISettings | None = None) -> FastAPI:
    settings = settings or api_settings()
    catalog = ModelCatalog(load_model_configs(settings.config))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from workers.celery_app import app as celery_app  # to send jobs

        # after a Redis restart a pooled connection may be a dead socket: one immediate retry on a
        # fresh connection (a dead Redis still fails fast: connecting is what times out)
        connection = {"socket_timeout": settings.redis_timeout_s, "socket_connect_timeout": settings.redis_timeout_s,
                      "health_check_interval": 10, "retry": Retry(NoBackoff(), 1),
                      "retry_on_error": [redis.exceptions.ConnectionError]}
        client = aioredis.Redis.from_url(settings.redis_url, decode_responses=True, **connection)
        binary = aioredis.Redis.from_url(settings.redis_url, **connection)  # audio results are bytes
        # large inputs: connecting still fails fast, writing gets the time its bytes need
        bulk = aioredis.Redis.from_url(settings.redis_url, **{
            **connection, "socket_timeout": settings.redis_timeout_s + settings.max_body_bytes / BULK_BYTES_PER_S})
        store = AsyncJobStore(client, settings.job_ttl_s, binary, bulk, settings.redis_timeout_s)
        events = JobEvents(client)
        events.start()
        app.state.redis = client
        app.state.settings = settings
        app.state.catalog = catalog
        app.state.job_store = store
        app.state.dispatcher = JobDispatcher(client, celery_app, store, events, settings,
                                             scale_from_zero=catalog.scale_from_zero)
        try:
            yield
        finally:
            await events.stop()
            await client.aclose()
            await binary.aclose()
            await bulk.aclose()

    app = FastAPI(
        title="speechfleet",
        summary="Speech inference on a Celery + Redis worker fleet; HSE- and OpenAI-compatible.",
        version=health._version(),
        lifespan=lifespan,
    )
    install_error_handlers(app)
    routers = [module.router for module in (vad, embed, transcriptions, speech, convert, voice, voices, models, jobs,
                                            health, metrics, fleet, playground, realtime, diarization)]
    for router in routers:
        app.include_router(router)
    app.mount("/playground", playground.static_files(), name="playground")
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes,
                       max_inflight_bytes=settings.max_inflight_body_bytes)
    app.add_middleware(AccessControl, api_keys=settings.api_keys, rate_limit_per_minute=settings.rate_limit_per_minute,
                       open_listings=listing_paths(routers) if settings.public_listings else frozenset())
    app.add_middleware(RequestId)
    if settings.allowed_origins:  # outermost: preflights and refusals (401, 413) carry the headers too
        app.add_middleware(CORSMiddleware, allow_origins=settings.allowed_origins, allow_methods=["*"],
                           allow_headers=["*"], expose_headers=EXPOSED_HEADERS, max_age=600)
    if tracing.setup(tracing.API_SERVICE):
        instrument(app)
    return app


# probes and scrapes would bury the requests worth a trace
UNTRACED_PATHS = "/health,/ready,/metrics,/version"


def instrument(app: FastAPI) -> None:
    """A server span per request (only with tracing on: the import and the middleware are skipped
    otherwise). The API sends jobs with their trace context in the message headers itself
    (``workers.canvas``), so Celery is not instrumented here: it would open a publish span per
    message that, for a task this process does not define, it never ends."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, tracer_provider=tracing.provider(), excluded_urls=UNTRACED_PATHS,
                                       exclude_spans=["receive", "send"])


# what a browser client may read from an answer besides the safelisted headers
EXPOSED_HEADERS = ["Location", "Retry-After", "X-Request-Id", "X-Job-Id", "Preference-Applied"]


def listing_paths(routers: list[APIRouter]) -> frozenset[str]:
    """The GET routes that only list models or voices (open with SPEECHFLEET_PUBLIC_LISTINGS)."""
    return frozenset(route.path for router in routers for route in router.routes
                     if isinstance(route, APIRoute) and "GET" in route.methods and route.path.startswith("/v1/")
                     and (route.path.endswith("/models") or route.path == "/v1/audio/voices"))
