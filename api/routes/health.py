"""Liveness, readiness and version."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import redis.exceptions
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import CatalogDep, DispatcherDep
from speechmodels.registry import (
    SPEAKER_EMBEDDING,
    SPEECH_SYNTHESIS,
    TRANSCRIPTION,
    VAD,
    VOICE_CONVERSION,
)

router = APIRouter(tags=["health"])


def _version() -> str:
    try:
        return version("speechfleet")
    except PackageNotFoundError:
        return "0+unknown"


# HSE's /health keys, each answered for the capability the models behind it serve
HSE_HEALTH_KEYS = {"text_to_speech": SPEECH_SYNTHESIS, "speech_to_text": TRANSCRIPTION,
                   "voice_conversion": VOICE_CONVERSION, "voice_embedding": SPEAKER_EMBEDDING,
                   "voice_activity_detection": VAD}


@router.get("/health")
async def health(catalog: CatalogDep, dispatcher: DispatcherDep) -> dict:
    """``status: ok`` while the API process is up; then HSE's per-capability keys, each
    ``"healthy"`` when a model that does it has a live worker or scales from zero (its
    requests are taken), else ``"unhealthy: <reason>"`` (for every model, see /ready)."""
    body: dict[str, str] = {"status": "ok"}
    live: dict[str, int] | None = {}
    try:
        for name in catalog.configs:
            live[name] = await dispatcher.live_consumers(name)
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        live = None
    for key, capability in HSE_HEALTH_KEYS.items():
        models = [config.name for config in catalog.serving(capability)]
        if not models:
            body[key] = "unhealthy: no model configured for it"
        elif live is None:
            body[key] = "unhealthy: redis unreachable"
        elif any(live[name] or name in catalog.scale_from_zero for name in models):
            body[key] = "healthy"
        else:
            body[key] = f"unhealthy: no live worker for {', '.join(models)}"
    return body


@router.get("/ready", responses={503: {"description": "Redis unreachable or a model without a live worker"}})
async def ready(catalog: CatalogDep, dispatcher: DispatcherDep) -> JSONResponse:
    """200 once Redis answers and every configured model has at least one live consumer, a
    model marked ``scale_from_zero`` excepted (its requests wait in its queue for the worker an
    autoscaler starts). ``models``: live consumers per model; ``scale_from_zero``: the models
    that may have none."""
    try:
        consumers = {name: await dispatcher.live_consumers(name) for name in catalog.configs}
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        return JSONResponse({"ready": False, "redis": False, "reason": str(exc), "models": {}}, status_code=503)
    is_ready = all(count > 0 for name, count in consumers.items() if name not in catalog.scale_from_zero)
    return JSONResponse({"ready": is_ready, "redis": True, "models": consumers,
                         "scale_from_zero": sorted(catalog.scale_from_zero)}, status_code=200 if is_ready else 503)


@router.get("/version")
async def service_version() -> dict:
    return {"name": "speechfleet", "version": _version()}
