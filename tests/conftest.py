from __future__ import annotations

import base64
import contextlib

import httpx
import pytest
from celery import Celery

from speechfleet.redis_server import EmbeddedRedis
from tests.fleet import Fleet, fixture_audio


@pytest.fixture(scope="session")
def redis_server():
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture(scope="module")
def private_redis():
    """A Redis of the module's own, for tests that must not meet the shared fleet's sweepers."""
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture(scope="session")
def fleet(redis_server):
    """API + one worker per test model, shared by the API tests."""
    running = Fleet(redis_server)
    for models in ("silero-vad", "harmonyspeech-encoder", "vad-aux", "whisper", "piper", "rnnoise"):
        running.start_worker(models)
    running.start_webhook_worker()
    running.start_api()
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


@pytest.fixture
def paused(fleet, redis_server):
    """``with paused("vad-aux"):`` the model's workers stop taking jobs from its queue (Celery
    remote control), so jobs sent meanwhile stay queued; they resume on leaving the block."""
    app = Celery("control", broker=redis_server.url)

    @contextlib.contextmanager
    def pause(model_name: str):
        queue = f"model.{model_name}"
        assert app.control.cancel_consumer(queue, reply=True, timeout=5)
        try:
            yield
        finally:
            app.control.add_consumer(queue, reply=True, timeout=5)

    yield pause
    app.close()


@pytest.fixture
def client(fleet):
    with httpx.Client(base_url=fleet.base_url, timeout=120) as http:
        yield http


def b64_audio(name: str) -> str:
    return base64.b64encode(fixture_audio(name)).decode()
