"""Scale from zero: a model marked ``scale_from_zero`` takes requests while no worker serves it
(the queued job is what an autoscaler such as KEDA starts a worker on), and a worker started
afterwards answers them; a model not marked keeps its fast 503."""

import threading
import time

import httpx
import pytest
import redis
import yaml
from celery import Celery

from jobcontract.keys import PENDING_KEY, SWEEPER_LOCK_KEY
from tests.conftest import b64_audio
from tests.fleet import Fleet
from workers.recovery import LostJobSweeper

COLD, WARM = "cold-vad", "warm-vad"  # the first scales from zero, the second does not
ASYNC = {"Prefer": "respond-async"}


@pytest.fixture(scope="module")
def cold_fleet(private_redis, tmp_path_factory):
    """An API and no worker yet; the test starts them."""
    config = tmp_path_factory.mktemp("scale-from-zero") / "config.yml"
    config.write_text(yaml.safe_dump({"model_configs": [
        {"name": COLD, "model": "package:silero_vad", "model_type": "SileroVAD", "max_batch_size": 4,
         "max_wait_ms": 10, "scale_from_zero": True},
        {"name": WARM, "model": "package:silero_vad", "model_type": "SileroVAD", "max_batch_size": 4,
         "max_wait_ms": 10},
    ]}))
    fleet = Fleet(private_redis, config=config)
    fleet.start_api()
    try:
        fleet.wait_healthy()
        yield fleet
    finally:
        fleet.stop()


def vad_request(model: str) -> dict:
    return {"model": model, "input_audio": b64_audio("jfk.flac"), "get_timestamps": True}


def queue_depth(http: httpx.Client, model: str) -> float:
    line = next(line for line in http.get("/metrics").text.splitlines()
                if line.startswith(f'speechfleet_queue_depth{{model="{model}"}}'))
    return float(line.rpartition(" ")[2])


def job(http: httpx.Client, job_id: str) -> dict:
    return http.get(f"/v1/jobs/{job_id}").json()


def sweep_everything(client: redis.Redis, url: str, watched: str) -> list[str]:
    """One sweep that looks at every unfinished job however fresh (it takes the sweep lock: a
    worker's own sweeper may hold it for a round); returns the jobs it sent again."""
    celery = Celery("sweep", broker=url)
    sweeper = LostJobSweeper(client, celery, "test-sweeper", quiet_after_s=0, interval_s=60)
    try:
        deadline = time.monotonic() + 30
        while True:
            before = client.zscore(PENDING_KEY, watched)
            resent = sweeper.sweep()
            if client.zscore(PENDING_KEY, watched) != before:  # this sweep looked at the job
                return resent
            assert time.monotonic() < deadline, "the sweep lock was never free"
            time.sleep(0.5)
    finally:
        client.delete(SWEEPER_LOCK_KEY)
        celery.close()


def test_requests_wait_for_a_worker_started_after_them(cold_fleet, private_redis):
    http = httpx.Client(base_url=cold_fleet.base_url, timeout=90)
    # listed, and the API is ready though this model has no worker; the model not marked holds it back
    assert {COLD, WARM} <= {card["id"] for card in http.get("/v1/models").json()["data"]}
    ready = http.get("/ready")
    assert ready.status_code == 503 and ready.json()["models"] == {COLD: 0, WARM: 0}
    assert ready.json()["scale_from_zero"] == [COLD]
    marked = {model["name"]: model["scale_from_zero"] for model in http.get("/v1/fleet").json()["models"]}
    assert marked == {COLD: True, WARM: False}
    refused = http.post("/v1/audio/vad", json=vad_request(WARM))
    assert refused.status_code == 503 and refused.json()["reason"] == "no_worker"

    # accepted and queued: an async job, a job with a deadline, and a synchronous caller that waits
    queued = http.post("/v1/audio/vad", json=vad_request(COLD), headers=ASYNC)
    assert queued.status_code == 202 and queued.json()["status"] == "queued"
    doomed = http.post("/v1/audio/vad", json=vad_request(COLD), headers={**ASYNC, "X-Deadline": "1"})
    assert doomed.status_code == 202
    # a synchronous caller with a deadline hears of it at the deadline, not at the end of its wait
    late = http.post("/v1/audio/vad", json=vad_request(COLD), headers={"X-Deadline": "1"})
    assert late.status_code == 504 and late.json()["reason"] == "deadline_exceeded", late.text
    answer: dict = {}
    caller = threading.Thread(target=lambda: answer.update(response=http.post("/v1/audio/vad",
                                                                               json=vad_request(COLD))))
    caller.start()
    deadline = time.monotonic() + 30
    while queue_depth(http, COLD) < 4:  # the queue depth an autoscaler reads: a message per job sent one by one
        assert time.monotonic() < deadline and caller.is_alive(), answer
        time.sleep(0.1)

    # a worker for the other model: the API is ready while the marked model still has none
    cold_fleet.start_worker(WARM)
    cold_fleet.wait_ready()
    ready = http.get("/ready").json()
    assert ready["ready"] is True and ready["models"] == {COLD: 0, WARM: 1}
    assert http.get("/health").json()["voice_activity_detection"] == "healthy"
    # the lost-job sweeper finds the waiting jobs' messages in their queue: nothing resent, nothing failed
    client = redis.Redis.from_url(private_redis.url, decode_responses=True)
    assert sweep_everything(client, private_redis.url, queued.json()["id"]) == []
    assert job(http, queued.json()["id"])["status"] == "queued" and caller.is_alive()

    cold_fleet.start_worker(COLD)
    caller.join(90)
    response = answer["response"]
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == COLD and body["speech_activity"] is True and len(body["timestamps"]) >= 3
    deadline = time.monotonic() + 30
    while job(http, queued.json()["id"])["status"] != "succeeded":
        assert time.monotonic() < deadline, job(http, queued.json()["id"])
        time.sleep(0.1)
    while (dropped := job(http, doomed.json()["id"]))["status"] == "queued":
        assert time.monotonic() < deadline, dropped
        time.sleep(0.1)
    assert dropped["status"] == "failed" and dropped["error"]["reason"] == "deadline_exceeded", dropped
    assert queue_depth(http, COLD) == 0
