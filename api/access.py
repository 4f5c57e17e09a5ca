"""Who may call ``/v1``: API keys (``Authorization: Bearer <key>``, or ``Api-Key`` /
``X-Api-Key``, any one of them) and a per-key rate limit kept in Redis, so every API replica
counts against the same budget. Health, readiness, metrics and docs stay open.

Each key belongs to a tenant, named in ``SPEECHFLEET_API_KEYS`` as ``name:secret`` (or, for a
bare ``secret``, ``key-`` and the start of its SHA-256): a stable id that is not the secret,
which owns the jobs made with the key and can be logged. The tenant of a request is put on
``request.state.tenant``.

Credentials must be unambiguous: two ``Authorization`` headers, or different keys in
different headers, are refused rather than one of them picked.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass

import redis.exceptions
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import error_body

PROTECTED_PREFIX = "/v1"
RATE_KEY_PREFIX = "speechfleet:rate:"


@dataclass(frozen=True)
class ApiKey:
    tenant: str  # who owns what the key makes: safe to log and to store
    secret: str


def parse_api_keys(entries: list[str]) -> list[ApiKey]:
    """``name:secret`` or a bare ``secret`` per entry."""
    keys = []
    for entry in entries:
        name, separator, secret = entry.partition(":")
        if not separator:
            name, secret = f"key-{hashlib.sha256(entry.encode()).hexdigest()[:12]}", entry
        keys.append(ApiKey(name.strip(), secret.strip()))
    return keys


class AmbiguousCredentials(ValueError):
    pass


def presented_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The one credential the request presents; AmbiguousCredentials for two."""
    authorizations = [value.decode("latin-1") for name, value in headers if name == b"authorization"]
    if len(authorizations) > 1:
        raise AmbiguousCredentials("send one Authorization header, not several")
    presented = set()
    for authorization in authorizations:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            presented.add(token.strip())
    presented.update(value.decode("latin-1").strip() for name, value in headers
                     if name in (b"api-key", b"x-api-key") and value.strip())
    if len(presented) > 1:
        raise AmbiguousCredentials("the request presents different API keys in different headers")
    return next(iter(presented), None)


def matching_key(candidate: str | None, keys: list[ApiKey]) -> ApiKey | None:
    """The configured key equal to ``candidate``, compared in constant time against every key."""
    found = None
    for key in keys:
        if hmac.compare_digest((candidate or "").encode(), key.secret.encode()) and candidate:
            found = key
    return found


class AccessControl:
    def __init__(self, app: ASGIApp, api_keys: list[str], rate_limit_per_minute: int | None,
                 open_listings: frozenset[str] = frozenset()):
        self.app = app
        self.api_keys = parse_api_keys(api_keys)
        self.rate_limit = rate_limit_per_minute
        #: GET paths a request without any key may read (SPEECHFLEET_PUBLIC_LISTINGS); a key
        #: that is presented is still checked
        self.open_listings = open_listings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.api_keys or not scope["path"].startswith(PROTECTED_PREFIX):
            await self.app(scope, receive, send)
            return
        try:
            presented = presented_key(scope["headers"])
        except AmbiguousCredentials as exc:
            await _refuse(send, 401, f"ambiguous credentials: {exc}", "ambiguous_credentials",
                          [(b"www-authenticate", b"Bearer")])
            return
        if presented is None and scope.get("method") == "GET" and scope["path"] in self.open_listings:
            await self.app(scope, receive, send)
            return
        key = matching_key(presented, self.api_keys)
        if key is None:
            await _refuse(send, 401, "a valid API key is required: 'Authorization: Bearer <key>' or 'Api-Key: <key>'",
                          "invalid_api_key", [(b"www-authenticate", b"Bearer")])
            return
        scope.setdefault("state", {})["tenant"] = key.tenant
        if self.rate_limit is not None:
            retry_after = await self._spend(scope, key)
            if retry_after is not None:
                await _refuse(send, 429, f"rate limit of {self.rate_limit} requests per minute reached",
                              "rate_limited", [(b"retry-after", str(retry_after).encode())])
                return
        await self.app(scope, receive, send)

    async def _spend(self, scope: Scope, key: ApiKey) -> int | None:
        """Count this request in the key's current minute; seconds to wait if over the limit."""
        client = scope["app"].state.redis
        now = time.time()
        window = int(now // 60)
        bucket = f"{RATE_KEY_PREFIX}{hashlib.sha256(key.secret.encode()).hexdigest()[:24]}:{window}"
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
