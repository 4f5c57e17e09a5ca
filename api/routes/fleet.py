"""GET /v1/fleet: what the playground's fleet view shows, as JSON: per model its queue depth
and live workers (the same numbers /metrics gives), and the toolchains that can run."""

from __future__ import annotations

import time

import redis.exceptions
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.deps import CatalogDep, DispatcherDep
from jobcontract.keys import consumers_key

router = APIRouter(tags=["health"])


class FleetModel(BaseModel):
    name: str
    model_type: str
    queue: str
    capabilities: list[str]
    queue_depth: int
    live_workers: int
    workers: list[str] = Field(description="the live worker processes consuming the model's queue")
    scale_from_zero: bool = Field(description="jobs are queued even with no live worker (an autoscaler starts one)")


class FleetToolchain(BaseModel):
    name: str
    routes: dict[str, list[str]]


class FleetView(BaseModel):
    redis: bool
    reason: str | None = None
    models: list[FleetModel] = Field(default_factory=list)
    toolchains: list[FleetToolchain] = Field(default_factory=list)
    time: float


@router.get("/v1/fleet", response_model=FleetView, summary="Queue depth and live workers per model")
async def fleet(request: Request, catalog: CatalogDep, dispatcher: DispatcherDep) -> FleetView:
    client = request.app.state.redis
    ttl = request.app.state.settings.heartbeat_ttl_s
    toolchains = [FleetToolchain(name=toolchain.name, routes={route: [model.name for model in models]
                                                              for route, models in routes.items()})
                  for toolchain, routes in catalog.toolchains()]
    models = []
    try:
        for name, config in catalog.configs.items():
            workers = await client.zrangebyscore(consumers_key(name), time.time() - ttl, "+inf")
            models.append(FleetModel(name=name, model_type=config.model_type, queue=config.queue,
                                     capabilities=sorted(catalog.capabilities[name]),
                                     queue_depth=await dispatcher.queue_depth(config.queue),
                                     live_workers=len(workers), workers=sorted(workers),
                                     scale_from_zero=config.scale_from_zero))
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        return FleetView(redis=False, reason=str(exc), toolchains=toolchains, time=time.time())
    return FleetView(redis=True, models=models, toolchains=toolchains, time=time.time())
