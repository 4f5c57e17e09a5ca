"""Liveness, readiness and version."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import redis.exceptions
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import CatalogDep, DispatcherDep

router = APIRouter(tags=["health"])


def _version() -> str:
    try:
        return version("speechfleet")
    except PackageNotFoundError:
        return "0+unknown"


@router.get("/health")
async def health() -> dict:
    """The API process is up (says nothing about Redis or workers; see /ready)."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "Redis unreachable or a model without a live worker"}})
async def ready(catalog: CatalogDep, dispatcher: DispatcherDep) -> JSONResponse:
    """200 once Redis answers and every configured model has at least one live consumer."""
    try:
        consumers = {name: await dispatcher.live_consumers(name) for name in catalog.configs}
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        return JSONResponse({"ready": False, "redis": False, "reason": str(exc), "models": {}}, status_code=503)
    is_ready = all(count > 0 for count in consumers.values())
    return JSONResponse({"ready": is_ready, "redis": True, "models": consumers}, status_code=200 if is_ready else 503)


@router.get("/version")
async def service_version() -> dict:
    return {"name": "speechfleet", "version": _version()}
