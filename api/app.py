"""The app factory: everything the routes need is built once in the lifespan and kept on
``app.state``."""

from __future__ import annotations

from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import FastAPI

from api.access import AccessControl
from api.catalog import ModelCatalog
from api.dispatch import JobDispatcher
from api.errors import install_error_handlers
from api.events import JobEvents
from api.middleware import BodySizeLimit, RequestId
from api.routes import (
    convert,
    embed,
    health,
    jobs,
    metrics,
    models,
    speech,
    transcriptions,
    vad,
    voice,
)
from jobcontract.async_store import BULK_BYTES_PER_S, AsyncJobStore
from jobcontract.settings import APISettings, api_settings
from speechmodels import load_model_configs


def create_app(settings: APISettings | None = None) -> FastAPI:
    settings = settings or api_settings()
    catalog = ModelCatalog(load_model_configs(settings.config))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from workers.celery_app import app as celery_app  # to send jobs

        connection = {"socket_timeout": settings.redis_timeout_s, "socket_connect_timeout": settings.redis_timeout_s,
                      "health_check_interval": 10}
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
        app.state.dispatcher = JobDispatcher(client, celery_app, store, events, settings)
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
    for module in (vad, embed, transcriptions, speech, convert, voice, models, jobs, health, metrics):
        app.include_router(module.router)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes,
                       max_inflight_bytes=settings.max_inflight_body_bytes)
    app.add_middleware(AccessControl, api_keys=settings.api_keys, rate_limit_per_minute=settings.rate_limit_per_minute)
    app.add_middleware(RequestId)
    return app
