"""Webhooks: when a job with a ``callback_url`` ends, a delivery task on the ``webhooks``
queue POSTs the job to it, signed the Standard Webhooks way, retried with exponential
backoff, at most once per job however often the task runs, every attempt recorded on the job.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from functools import lru_cache
from urllib.parse import urlsplit

import httpx
import redis
from celery import Task
from loguru import logger

from jobcontract import tracing
from jobcontract.callbacks import CallbackRefused, CallbackTarget, resolve_callback
from jobcontract.keys import job_key, webhook_state_key
from jobcontract.record import JobRecord
from jobcontract.settings import worker_settings
from workers.celery_app import WEBHOOK_TASK, app
from workers.metrics import WorkerMetrics


def signing_key(secret: str) -> bytes:
    """Standard Webhooks secrets look like ``whsec_<base64>``; any other string is used as is."""
    return base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else secret.encode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(signing_key(secret), f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def job_event(record: JobRecord) -> dict:
    """The payload: what ``GET /v1/jobs/{id}`` shows, with the result or the error."""
    event = {"type": f"job.{record.status}", "id": record.id, "model": record.model,
             "capability": record.capability, "status": record.status, "created_at": record.created_at,
             "finished_at": record.finished_at, "result": record.result}
    if record.error is not None:
        event["error"] = {"message": record.error.message, "code": record.error.status, "reason": record.error.reason}
    return event


def post_to(target: CallbackTarget, body: bytes, headers: dict[str, str], timeout_s: float) -> httpx.Response:
    """POST to the checked address itself, not to whatever the name resolves to by now: the
    URL's host is replaced by the address, and the name still goes in the Host header and, for
    https, in TLS (SNI and certificate check)."""
    parts = urlsplit(target.url)
    literal = f"[{target.address}]" if target.address.version == 6 else str(target.address)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo + '@' if userinfo else ''}{literal}:{target.port}"
    default_port = 443 if parts.scheme == "https" else 80
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    if ":" in target.host:  # an IPv6 literal host
        host_header = f"[{target.host}]" + ("" if target.port == default_port else f":{target.port}")
    extensions = {"sni_hostname": target.host} if parts.scheme == "https" else {}
    with httpx.Client(timeout=timeout_s, follow_redirects=False) as client:
        request = client.build_request("POST", parts._replace(netloc=netloc).geturl(), content=body,
                                       headers={**headers, "host": host_header}, extensions=extensions)
        return client.send(request)


@lru_cache
def _client() -> redis.Redis:
    return redis.Redis.from_url(worker_settings().redis_url, decode_responses=True)


@app.task(name=WEBHOOK_TASK, bind=True, acks_late=True, max_retries=None)
def deliver_webhook(self: Task, job_id: str) -> str:
    settings = worker_settings()
    client = _client()
    raw = client.hgetall(job_key(job_id))
    if not raw or not raw.get("callback_url"):
        return "no job or no callback"
    state_key = webhook_state_key(job_id)
    # the claim makes a second copy of this task (redelivery, duplicate enqueue) stand aside
    if not client.set(state_key, "delivering", nx=True, ex=int(settings.webhook_timeout_s) + 30):
        return "already delivered or being delivered"
    record = JobRecord.from_hash(raw)
    body = json.dumps(job_event(record), separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {"content-type": "application/json", "webhook-id": job_id, "webhook-timestamp": str(timestamp),
               "webhook-signature": sign(settings.webhook_secret, job_id, timestamp, body)}
    attempt = self.request.retries + 1
    started = time.perf_counter()
    outcome: dict = {"attempt": attempt, "at": time.time()}
    with tracing.started("webhook.deliver", {tracing.JOB_ID: job_id, tracing.MODEL: record.model,
                                             "speechfleet.webhook.attempt": attempt},
                         tracing.job_context(record.trace)) as span:
        try:
            # resolved and checked again (DNS may have changed), and the POST goes to that address
            target = resolve_callback(raw["callback_url"], settings.webhook_allow_private)
            response = post_to(target, body, headers, settings.webhook_timeout_s)
            outcome["status_code"] = response.status_code
            delivered = 200 <= response.status_code < 300
        except (httpx.HTTPError, CallbackRefused) as exc:
            outcome["error"] = f"{exc.__class__.__name__}: {exc}"
            delivered = False
        if span is not None:
            span.set_attributes({"http.response.status_code": outcome.get("status_code", 0),
                                 "speechfleet.webhook.delivered": delivered})
    outcome["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    with client.pipeline() as pipe:
        pipe.hset(job_key(job_id), f"webhook.{attempt}", json.dumps(outcome))
        if delivered:
            pipe.set(state_key, "delivered", ex=settings.job_ttl_s)
        else:
            pipe.delete(state_key)
        pipe.execute()
    gave_up = not delivered and attempt >= settings.webhook_max_attempts
    WorkerMetrics(client).webhook("delivered" if delivered else "gave_up" if gave_up else "retrying")
    if delivered:
        return "delivered"
    if gave_up:
        logger.warning("webhook for job {} gave up after {} attempts", job_id, attempt)
        return "gave up"
    countdown = settings.webhook_backoff_s * 2 ** (attempt - 1)
    logger.info("webhook for job {} not delivered on attempt {} ({}); retrying in {:g}s", job_id, attempt,
                outcome.get("error") or f"HTTP {outcome.get('status_code')}", countdown)
    raise self.retry(countdown=countdown)
