"""Who may call ``/v1``: API keys (``Authorization: Bearer <key>``, or ``Api-Key`` /
``X-Api-Key``, any one of them) and a per-key rate limit kept in Redis, so every API replica
counts against the same budget. Health, readiness, metrics and docs stay open."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import redis.exceptions
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import error_body

PROTECTED_PREFIX = "/v1"
RATE_KEY_PREFIX = "speechfleet:rate:"


def presented_key(headers: dict[bytes, bytes]) -> str | None:
    authorization = headers.get(b"authorization", b"").decode("latin-1")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    for name in (b"api-key", b"x-api-key"):
        if headers.get(name):
            return headers[name].decode("latin-1").strip()
    return None


def matching_key(candidate: str | None, keys: list[str]) -> str | None:
    """The configured key equal to ``candidate``, compared in constant time against every key."""
    found = None
    for key in keys:
        if hmac.compare_digest((candidate or "").encode(), key.encode()) and candidate:
            found = key
    return found


class AccessControl:
    def __init__(self, app: ASGIApp, api_keys: list[str], rate_limit_per_minute: int | None):
        self.app = app
        self.api_keys = api_keys
        self.rate_limit = rate_limit_per_minute

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.api_keys or not scope["path"].startswith(PROTECTED_PREFIX):
            await self.app(scope, receive, send)
            return
        key = matching_key(presented_key(dict(scope["headers"])), self.api_keys)
        if key is None:
            await _refuse(send, 401, "a valid API key is required: 'Authorization: Bearer <key>' or 'Api-Key: <key>'",
                          "invalid_api_key", [(b"www-authenticate", b"Bearer")])
            return
        if self.rate_limit is not None:
            retry_after = await self._spend(scope, key)
            if retry_after is not None:
                await _refuse(send, 429, f"rate limit of {self.rate_limit} requests per minute reached",
                              "rate_limited", [(b"retry-after", str(retry_after).encode())])
                return
        await self.app(scope, receive, send)

    async def _spend(self, scope: Scope, key: str) -> int | None:
        """Count this request in the key's current minute; seconds to wait if over the limit."""
        client = scope["app"].state.redis
        now = time.time()
        window = int(now // 60)
        bucket = f"{RATE_KEY_PREFIX}{hashlib.sha256(key.encode()).hexdigest()[:24]}:{window}"
        try:
            async with client.pipeline(transaction=True) as pipe:
                pipe.incr(bucket)
                pipe.expire(bucket, 120)
                count, _ = await pipe.execute()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            return None  # no broker, no jobs: the route itself answers 503
        if count > self.rate_limit:
            return max(1, int((window + 1) * 60 - now) + 1)
        return None


async def _refuse(send: Send, status: int, message: str, reason: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps(error_body(status, message, reason=reason)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})
