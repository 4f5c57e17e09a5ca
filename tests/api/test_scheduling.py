"""Request priorities honoured by the queues, and deadlines that drop jobs still queued."""

import time

from tests.api.test_jobs import ASYNC, poll
from tests.conftest import b64_audio


def submit(client, headers: dict) -> str:
    response = client.post("/v1/audio/vad", headers={**ASYNC, **headers},
                           json={"model": "vad-aux", "input_audio": b64_audio("cmu_arctic_us_axb_a0005.wav")})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def test_a_high_priority_job_overtakes_a_queue_of_low_ones(client, paused):
    with paused("vad-aux"):
        low = [submit(client, {"X-Priority": "low"}) for _ in range(16)]
        high = submit(client, {"X-Priority": "high"})
        assert client.get(f"/v1/jobs/{high}").json()["priority"] == "high"
    finished = {job_id: poll(client, job_id) for job_id in [*low, high]}
    assert all(job["status"] == "succeeded" for job in finished.values())
    low_starts = sorted(finished[job_id]["started_at"] for job_id in low)
    # sent last, FIFO would start it after every low job; the worker took it in its first fetch
    assert finished[high]["started_at"] < low_starts[-4]


def test_a_job_past_its_deadline_is_dropped_not_run(client, paused):
    with paused("vad-aux"):
        doomed = submit(client, {"X-Deadline": "0.3"})
        patient = submit(client, {"X-Deadline": "120"})
        time.sleep(0.6)
    dropped, ran = poll(client, doomed), poll(client, patient)
    assert ran["status"] == "succeeded"
    assert dropped["status"] == "failed" and dropped["attempts"] == 0
    assert dropped["error"]["reason"] == "deadline_exceeded" and dropped["error"]["code"] == 504
    result = client.get(f"/v1/jobs/{doomed}/result")
    assert result.status_code == 504 and result.json()["reason"] == "deadline_exceeded"


def test_bad_scheduling_headers_are_400(client):
    for headers, reason in (({"X-Priority": "urgent"}, "invalid_priority"), ({"X-Deadline": "soon"}, "invalid_deadline"),
                            ({"X-Deadline": "-1"}, "invalid_deadline")):
        response = client.post("/v1/audio/vad", headers=headers,
                               json={"model": "vad-aux", "input_audio": b64_audio("cmu_arctic_us_axb_a0005.wav")})
        assert response.status_code == 400 and response.json()["reason"] == reason
