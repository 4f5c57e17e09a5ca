"""Jobs belong to the API key that made them; credentials must be unambiguous. On an API
process of its own with named keys, sharing the fleet's Redis and workers."""

import time

import httpx
import pytest

from tests.conftest import b64_audio
from tests.fleet import Fleet

ALICE = {"Authorization": "Bearer alice-secret"}
BOB = {"Authorization": "Bearer bob-secret"}


@pytest.fixture(scope="module")
def keyed(redis_server, fleet):
    replica = Fleet(redis_server, extra_env={"SPEECHFLEET_API_KEYS": "alice:alice-secret,bob:bob-secret"})
    replica.start_api()
    replica.wait_healthy()
    with httpx.Client(base_url=replica.base_url, timeout=60) as http:
        yield http
    replica.stop()


def _alice_job(keyed, **extra) -> str:
    accepted = keyed.post("/v1/audio/vad", headers={**ALICE, "Prefer": "respond-async"},
                          json={"model": "silero-vad", "input_audio": b64_audio("jfk.flac"), **extra})
    assert accepted.status_code == 202, accepted.text
    return accepted.json()["id"]


def test_another_key_cannot_see_read_or_cancel_a_job(keyed):
    job_id = _alice_job(keyed)
    for method, path in (("GET", f"/v1/jobs/{job_id}"), ("GET", f"/v1/jobs/{job_id}/result"),
                         ("DELETE", f"/v1/jobs/{job_id}")):
        response = keyed.request(method, path, headers=BOB)
        # exactly what a job that does not exist gets: existence is not leaked
        assert response.status_code == 404 and response.json()["reason"] == "job_not_found", (method, path)
        missing = keyed.request(method, path.replace(job_id, "f" * 32), headers=BOB)
        assert missing.json()["message"].replace("f" * 32, job_id) == response.json()["message"]
    deadline = time.monotonic() + 60
    while (job := keyed.get(f"/v1/jobs/{job_id}", headers=ALICE).json())["status"] != "succeeded":
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    assert keyed.get(f"/v1/jobs/{job_id}/result", headers=ALICE).json()["speech_activity"] is True


def test_a_job_view_never_shows_the_callback_credentials(keyed):
    job_id = _alice_job(keyed, callback_url="http://hook-user:hook-password@127.0.0.1:9/hook?x=1")
    shown = keyed.get(f"/v1/jobs/{job_id}", headers=ALICE).json()["callback_url"]
    assert shown == "http://***@127.0.0.1:9/hook?x=1"
    assert "hook-password" not in keyed.get(f"/v1/jobs/{job_id}", headers=ALICE).text


@pytest.mark.parametrize("headers", [
    [("Authorization", "Bearer nope"), ("Authorization", "Bearer alice-secret")],
    [("Authorization", "Bearer alice-secret"), ("Authorization", "Bearer alice-secret")],
    [("Authorization", "Bearer alice-secret"), ("Api-Key", "bob-secret")],
    [("X-Api-Key", "alice-secret"), ("Api-Key", "bob-secret")],
])
def test_ambiguous_credentials_are_refused(keyed, headers):
    response = keyed.get("/v1/models", headers=headers)
    assert response.status_code == 401 and response.json()["reason"] == "ambiguous_credentials"


def test_one_key_in_two_headers_is_not_ambiguous(keyed):
    assert keyed.get("/v1/models", headers={**ALICE, "Api-Key": "alice-secret"}).status_code == 200
