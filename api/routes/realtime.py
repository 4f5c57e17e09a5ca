"""Realtime transcription: ``GET /v1/realtime?intent=transcription`` (WebSocket, OpenAI's GA
Realtime API as the ``openai`` package speaks it), ``POST /v1/realtime/client_secrets``
(short-lived secrets a backend mints with its API key for a browser page, which cannot set
headers on a WebSocket) and ``GET /v1/realtime/sessions/{id}/items`` (a session's turns and
their transcripts, also after the socket is gone).

The WebSocket authenticates itself (AccessControl guards HTTP only): ``Authorization: Bearer``
(or ``Api-Key``) with an API key or a client secret, or, from a browser, the subprotocol
``openai-insecure-api-key.<client secret>`` as OpenAI's browser examples send it. Every refusal
is an ``error`` event followed by a close, never a dropped socket.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, WebSocket

from api.access import AmbiguousCredentials, matching_key, parse_api_keys, presented_key
from api.deps import CatalogDep, DispatcherDep, SettingsDep, tenant
from api.errors import APIError, not_found
from api.realtime.protocol import RealtimeError, SessionConfig, error_event
from api.realtime.session import RealtimeSession, checked_model
from api.routes.common import ERROR_RESPONSES
from jobcontract.keys import realtime_items_key, realtime_secret_key

router = APIRouter(tags=["realtime"])

SUBPROTOCOL_KEY_PREFIX = "openai-insecure-api-key."
SECRET_PREFIX = "ek_"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@router.websocket("/v1/realtime")
async def realtime(websocket: WebSocket) -> None:
    app = websocket.app
    settings, catalog, dispatcher = app.state.settings, app.state.catalog, app.state.dispatcher
    offered = list(websocket.scope.get("subprotocols") or [])
    from_subprotocol = [p[len(SUBPROTOCOL_KEY_PREFIX):] for p in offered if p.startswith(SUBPROTOCOL_KEY_PREFIX)]
    chosen = "realtime" if "realtime" in offered else next(
        (p for p in offered if not p.startswith(SUBPROTOCOL_KEY_PREFIX)), offered[0] if offered else None)
    await websocket.accept(subprotocol=chosen)

    async def refuse(code: str, message: str, close_code: int = 1008, kind: str = "invalid_request_error") -> None:
        await websocket.send_text(json.dumps(error_event(code, message, kind=kind)))
        await websocket.close(close_code)

    if websocket.query_params.get("intent") != "transcription":
        await refuse("unsupported_intent", "this server runs transcription sessions only: connect to "
                     "/v1/realtime?intent=transcription")
        return
    try:
        presented = presented_key(websocket.scope["headers"])
    except AmbiguousCredentials as exc:
        await refuse("ambiguous_credentials", f"ambiguous credentials: {exc}")
        return
    if presented is None and from_subprotocol:
        presented = from_subprotocol[0]
    config = SessionConfig()
    owner: str | None = None
    limit_key: str | None = None
    if presented is not None and presented.startswith(SECRET_PREFIX):
        raw = await app.state.redis.get(realtime_secret_key(_digest(presented)))
        if raw is None:
            await refuse("invalid_client_secret", "the client secret is unknown or has expired; mint a new one with "
                         "POST /v1/realtime/client_secrets")
            return
        stored = json.loads(raw)
        owner, config = stored.get("owner"), SessionConfig.from_dict(stored["session"])
        limit_key = owner if settings.api_keys else None
    elif settings.api_keys:
        key = matching_key(presented, parse_api_keys(settings.api_keys))
        if key is None:
            await refuse("invalid_api_key", "a valid API key or client secret is required: 'Authorization: Bearer "
                         "<key>', or the subprotocol 'openai-insecure-api-key.<client secret>'")
            return
        owner = limit_key = key.tenant
    try:
        session = RealtimeSession(websocket, dispatcher, catalog, app.state.redis, owner, limit_key, config)
    except RealtimeError as exc:
        await refuse(exc.code, exc.message)
        return
    held = await session.claim_presence()
    if limit_key is not None and held > settings.realtime_max_sessions_per_key:
        await session._leave()
        await refuse("session_limit_reached", f"this API key already holds {settings.realtime_max_sessions_per_key} "
                     "realtime sessions, its limit; close one first", kind="rate_limit_error")
        return
    await session.run()


@router.post("/v1/realtime/client_secrets", responses=ERROR_RESPONSES,
             summary="Mint a short-lived client secret for a browser's realtime transcription session")
async def client_secrets(request: Request, catalog: CatalogDep, dispatcher: DispatcherDep, settings: SettingsDep,
                         body: Annotated[dict[str, Any] | None, Body()] = None) -> dict[str, Any]:
    body = body or {}
    expires = body.get("expires_after") or {}
    if not isinstance(expires, dict) or expires.get("anchor", "created_at") != "created_at":
        raise APIError(400, "expires_after must be {anchor: 'created_at', seconds: N}", reason="invalid_request",
                       param="expires_after")
    seconds = expires.get("seconds", 600)
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 10 <= seconds <= 7200:
        raise APIError(400, "expires_after.seconds must be a whole number from 10 to 7200", reason="invalid_request",
                       param="expires_after.seconds")
    try:
        config = SessionConfig().updated(body.get("session") or {"type": "transcription"})
        if (body.get("session") or {}).get("type") != "transcription":
            raise RealtimeError("invalid_value", "session.type must be 'transcription': this server runs "
                                "transcription sessions only", "session.type")
        model = checked_model(catalog, config)
    except RealtimeError as exc:
        raise APIError(404 if exc.code == "model_not_found" else 400, exc.message, reason=exc.code,
                       param=exc.param) from None
    value = SECRET_PREFIX + secrets.token_urlsafe(32)
    expires_at = int(time.time()) + seconds
    await request.app.state.redis.set(realtime_secret_key(_digest(value)),
                                      json.dumps({"owner": tenant(request), "session": config.to_dict()}), ex=seconds)
    return {"value": value, "expires_at": expires_at,
            "session": config.describe(f"sess_{secrets.token_hex(12)}", model, expires_at)}


@router.get("/v1/realtime/sessions/{session_id}/items", responses=ERROR_RESPONSES,
            summary="A realtime session's committed turns and their transcripts (also after it closed)")
async def session_items(session_id: str, request: Request, dispatcher: DispatcherDep) -> dict[str, Any]:
    entries = [json.loads(raw) for raw in await request.app.state.redis.lrange(realtime_items_key(session_id), 0, -1)]
    if not entries or any(entry.get("owner") != tenant(request) for entry in entries):
        raise not_found(f"realtime session {session_id} has no turns (or is not yours)", reason="session_not_found")
    items = []
    for entry in entries:
        record = await dispatcher.store.get(entry["job_id"])
        item: dict[str, Any] = {"item_id": entry["item_id"], "job_id": entry["job_id"],
                                "status": record.status if record else "expired"}
        if record is not None and record.status == "succeeded":
            item["transcript"] = (record.result or {}).get("text", "").strip()
        elif record is not None and record.error is not None:
            item["error"] = {"code": record.error.reason, "message": record.error.message}
        items.append(item)
    return {"object": "list", "session_id": session_id, "data": items}
