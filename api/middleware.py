"""ASGI middleware: request body bounds (one body: 413 before it is read; all bodies held at
once by this process: 503 with Retry-After) and request ids."""

from __future__ import annotations

import json
import uuid

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body


class BodySizeLimit:
    """Refuse bodies over ``max_bytes``: at once when Content-Length says so, else as soon as
    the streamed body passes the bound. And bound what all requests in flight hold together
    (``max_inflight_bytes``): a request whose body would pass it is refused with 503 before
    it is read, as the request holding it is still being served. A request holds its bytes
    (counted from Content-Length, or as they arrive) until its response is sent."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_inflight_bytes: int | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.max_inflight_bytes = max_inflight_bytes
        self.inflight_bytes = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        declared_bytes = int(declared) if declared is not None and declared.isdigit() else 0
        if declared_bytes > self.max_bytes:
            await _refuse(send, 413, f"request body is larger than {self.max_bytes} bytes", "request_too_large")
            return
        if self.max_inflight_bytes is not None and declared_bytes and self.inflight_bytes \
                and self.inflight_bytes + declared_bytes > self.max_inflight_bytes:
            # read and drop the body (it is within max_bytes), so the client, still uploading,
            # gets to read the answer instead of a reset connection
            while (message := await receive())["type"] == "http.request" and message.get("more_body"):
                pass
            await _refuse(send, 503, "the server holds as many request bodies as it may right now; retry shortly",
                          "too_many_bodies_in_flight", [(b"retry-after", b"1")])
            return
        held = declared_bytes
        self.inflight_bytes += held
        received = 0

        async def limited_receive() -> Message:
            nonlocal received, held
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > held:  # no Content-Length, or a body longer than it said
                    self.inflight_bytes += received - held
                    held = received
                if received > self.max_bytes:
                    # FastAPI re-raises HTTPExceptions from body reading; the error handlers
                    # turn it into the envelope
                    raise HTTPException(413, f"request body is larger than {self.max_bytes} bytes")
            return message

        try:
            await self.app(scope, limited_receive, send)
        finally:
            self.inflight_bytes -= held


async def _refuse(send: Send, status: int, message: str, reason: str,
                  headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps(error_body(status, message, reason=reason)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


class RequestId:
    """Echo the caller's ``X-Request-Id`` or give one, on every response."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = dict(scope["headers"]).get(b"x-request-id") or uuid.uuid4().hex.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id[:128])]
            await send(message)

        await self.app(scope, receive, send_with_id)
