"""GET /metrics: Prometheus text format. Queue depths and live consumers are read from
Redis at scrape time, so the numbers hold however many API replicas and workers run."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Gauge,
    generate_latest,
)

from api.deps import CatalogDep, DispatcherDep

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response)
async def metrics(catalog: CatalogDep, dispatcher: DispatcherDep) -> Response:
    registry = CollectorRegistry()
    depth = Gauge("speechfleet_queue_depth", "jobs waiting in a model's queue", ["model"], registry=registry)
    consumers = Gauge("speechfleet_live_consumers", "worker processes serving a model", ["model"], registry=registry)
    for name, config in catalog.configs.items():
        depth.labels(name).set(await dispatcher.queue_depth(config.queue))
        consumers.labels(name).set(await dispatcher.live_consumers(name))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
