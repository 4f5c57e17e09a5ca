"""API keys and per-key rate limits, on two extra API processes that share the fleet's Redis
(and so its workers and its rate-limit counters)."""

import time

import httpx
import pytest

from jobcontract.settings import APISettings
from tests.fleet import Fleet

KEYS = "key-one,key-two"
LIMIT = 8


@pytest.fixture(scope="module")
def guarded(redis_server, fleet):
    replicas = []
    for _ in range(2):
        replica = Fleet(redis_server, extra_env={"SPEECHFLEET_API_KEYS": KEYS,
                                                 "SPEECHFLEET_RATE_LIMIT_PER_MINUTE": str(LIMIT)})
        replica.start_api()
        replicas.append(replica)
    for replica in replicas:
        replica.wait_healthy()
    yield [replica.base_url for replica in replicas]
    for replica in replicas:
        replica.stop()


def test_no_key_or_a_wrong_key_is_401(guarded):
    base = guarded[0]
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Api-Key": "key-one-but-longer"},
                    {"Authorization": "Basic a2V5LW9uZQ=="}):
        response = httpx.get(f"{base}/v1/models", headers=headers)
        assert response.status_code == 401, headers
        body = response.json()
        assert body["object"] == "error" and body["code"] == 401 and body["reason"] == "invalid_api_key"
        assert response.headers["www-authenticate"] == "Bearer"


def test_either_header_alone_is_enough(guarded):
    base = guarded[0]
    assert httpx.get(f"{base}/v1/models", headers={"Authorization": "Bearer key-one"}).status_code == 200
    assert httpx.get(f"{base}/v1/models", headers={"Api-Key": "key-two"}).status_code == 200
    assert httpx.get(f"{base}/v1/models", headers={"X-Api-Key": "key-two"}).status_code == 200


def test_health_and_docs_stay_open(guarded):
    for path in ("/health", "/ready", "/version", "/openapi.json", "/metrics"):
        assert httpx.get(f"{guarded[0]}{path}").status_code == 200, path


def test_rate_limit_is_shared_by_api_replicas(guarded):
    # a fresh minute, so earlier tests' requests with this key do not count
    time.sleep(max(0.0, 60 - time.time() % 60 + 0.2) if time.time() % 60 > 45 else 0)
    headers = {"Authorization": "Bearer key-one"}
    statuses = [httpx.get(f"{guarded[i % 2]}/v1/models", headers=headers).status_code for i in range(LIMIT + 4)]
    assert 429 in statuses
    assert statuses.count(200) <= LIMIT  # both replicas drew from one budget
    refused = httpx.get(f"{guarded[1]}/v1/models", headers=headers)
    assert refused.status_code == 429 and refused.json()["reason"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 61
    # another key has its own budget
    assert httpx.get(f"{guarded[1]}/v1/models", headers={"Api-Key": "key-two"}).status_code == 200


def test_production_refuses_to_run_open(monkeypatch):
    monkeypatch.delenv("SPEECHFLEET_API_KEYS", raising=False)
    with pytest.raises(ValueError, match="API_KEYS"):
        APISettings(environment="production")
    assert APISettings(environment="production", api_keys="k1").api_keys == ["k1"]
