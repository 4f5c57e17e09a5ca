"""No worker for a model, or no Redis at all: a quick 503 in the envelope, never a wait."""

import time

import httpx
import pytest
import yaml

from speechfleet.redis_server import EmbeddedRedis
from tests.conftest import b64_audio
from tests.fleet import Fleet


@pytest.fixture
def api_without_workers():
    redis_server = EmbeddedRedis().start()
    fleet = Fleet(redis_server)
    fleet.start_api()
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{fleet.base_url}/health", timeout=1)
            break
        except httpx.HTTPError:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    yield fleet, redis_server
    fleet.stop()
    redis_server.stop()


def timed_post(fleet):
    started = time.monotonic()
    response = httpx.post(f"{fleet.base_url}/v1/audio/vad", timeout=30,
                          json={"model": "silero-vad", "input_audio": b64_audio("cmu_arctic_us_axb_a0005.wav")})
    return response, time.monotonic() - started


def test_model_without_a_live_worker_is_a_fast_503(api_without_workers):
    fleet, _ = api_without_workers
    response, elapsed = timed_post(fleet)
    assert response.status_code == 503 and response.json()["reason"] == "no_worker"
    assert response.headers["retry-after"]
    assert elapsed < 1.0
    ready = httpx.get(f"{fleet.base_url}/ready")
    assert ready.status_code == 503 and ready.json()["models"]["silero-vad"] == 0


def test_redis_down_is_a_fast_503_and_the_api_recovers(api_without_workers):
    fleet, redis_server = api_without_workers
    port = redis_server.port
    redis_server.stop()
    response, elapsed = timed_post(fleet)
    assert response.status_code == 503 and response.json()["reason"] == "broker_unavailable", response.text
    assert elapsed < 1.5
    ready = httpx.get(f"{fleet.base_url}/ready", timeout=5)
    assert ready.status_code == 503 and ready.json()["redis"] is False
    assert httpx.get(f"{fleet.base_url}/v1/jobs/abc", timeout=5).status_code == 503

    revived = EmbeddedRedis(port=port).start()
    try:
        response, _ = timed_post(fleet)
        assert response.status_code == 503 and response.json()["reason"] == "no_worker"  # Redis answers again
    finally:
        revived.stop()


@pytest.fixture
def served_fleet(tmp_path):
    """``speechfleet serve`` (the supervised all-in-one mode) with one model, against a Redis
    of the test's own: what an operator runs, restarts included."""
    redis_server = EmbeddedRedis().start()
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"model_configs": [
        {"name": "silero-vad", "model": "package:silero_vad", "model_type": "SileroVAD"}]}))
    fleet = Fleet(redis_server, config=config)
    fleet.api = fleet._cli("serve", "serve", "--config", str(config), "--port", str(fleet.port))
    yield fleet, redis_server
    fleet.stop()
    redis_server.stop()


def test_the_fleet_recovers_by_itself_when_redis_returns(served_fleet):
    """Redis goes away and comes back empty. A worker may give up on the broker meanwhile
    (kombu can fail closing a channel whose acks never reached Redis: "Unrecoverable error",
    exit 1); ``speechfleet serve`` restarts it, as compose's restart policy would, and the
    fleet answers again without anyone touching it."""
    fleet, redis_server = served_fleet
    fleet.wait_ready_for("silero-vad")
    assert timed_post(fleet)[0].status_code == 200
    port = redis_server.port
    redis_server.stop()
    assert timed_post(fleet)[0].status_code == 503
    time.sleep(2)  # the worker and the API both see the broker gone
    revived = EmbeddedRedis(port=port).start()  # an empty Redis: workers must re-announce themselves
    try:
        fleet.wait_ready_for("silero-vad", timeout_s=90)
        response, _ = timed_post(fleet)
        assert response.status_code == 200 and response.json()["speech_activity"] is True, response.text
    finally:
        revived.stop()
