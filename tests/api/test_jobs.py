import time

from tests.conftest import b64_audio

ASYNC = {"Prefer": "respond-async"}


def poll(client, job_id: str, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.05)
    raise TimeoutError(job_id)


def test_async_job_result_equals_the_synchronous_answer(client):
    request = {"model": "silero-vad", "input_audio": b64_audio("jfk.flac"), "get_timestamps": True}
    accepted = client.post("/v1/audio/vad", json=request, headers=ASYNC)
    assert accepted.status_code == 202, accepted.text
    job = accepted.json()
    assert accepted.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] in ("queued", "running", "succeeded") and job["object"] == "job"
    finished = poll(client, job["id"])
    assert finished["status"] == "succeeded" and finished["attempts"] == 1
    (step,) = finished["steps"]
    assert step["model"] == "silero-vad" and step["queue"] == "model.silero-vad"
    assert step["batch_size"] >= 1 and step["inference_ms"] > 0 and step["queue_wait_ms"] >= 0
    result = client.get(f"/v1/jobs/{job['id']}/result").json()
    synchronous = client.post("/v1/audio/vad", json=request).json()
    assert result["id"] == job["id"]
    for body in (result, synchronous):
        body.pop("id"), body.pop("created")
    assert result == synchronous


def test_async_embedding(client):
    accepted = client.post("/v1/embed/speaker", headers=ASYNC,
                           json={"model": "harmonyspeech-encoder", "input_audio": b64_audio("cmu_arctic_us_aew_a0001.wav")})
    assert accepted.status_code == 202
    assert poll(client, accepted.json()["id"])["status"] == "succeeded"
    assert len(client.get(f"/v1/jobs/{accepted.json()['id']}/result").json()["data"]) > 1000


def submit_aux(client, clip: str) -> str:
    return client.post("/v1/audio/vad", headers=ASYNC, json={"model": "vad-aux", "input_audio": clip}).json()["id"]


def test_cancel_a_queued_job(client, paused):
    clip = b64_audio("cmu_arctic_us_axb_a0005.wav")
    with paused("vad-aux"):
        ids = [submit_aux(client, clip) for _ in range(2)]
        assert client.get(f"/v1/jobs/{ids[0]}").json()["status"] == "queued"
        cancelled = client.delete(f"/v1/jobs/{ids[0]}")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        assert client.delete(f"/v1/jobs/{ids[0]}").status_code == 200  # idempotent
        result = client.get(f"/v1/jobs/{ids[0]}/result")
        assert result.status_code == 409 and result.json()["reason"] == "job_cancelled"
        unfinished = client.get(f"/v1/jobs/{ids[1]}/result")
        assert unfinished.status_code == 409 and unfinished.json()["reason"] == "job_not_finished"


def test_a_cancelled_job_is_never_run_and_a_finished_one_cannot_be_cancelled(client, paused):
    clip = b64_audio("cmu_arctic_us_axb_a0005.wav")
    with paused("vad-aux"):
        ids = [submit_aux(client, clip) for _ in range(3)]
        assert client.delete(f"/v1/jobs/{ids[1]}").status_code == 200
    assert poll(client, ids[0])["status"] == "succeeded" and poll(client, ids[2])["status"] == "succeeded"
    final = client.get(f"/v1/jobs/{ids[1]}").json()
    assert final["status"] == "cancelled" and final["steps"] == [] and final["attempts"] == 0
    late = client.delete(f"/v1/jobs/{ids[0]}")
    assert late.status_code == 409 and late.json()["reason"] == "job_not_cancellable"


def test_unknown_job(client):
    for response in (client.get("/v1/jobs/nope"), client.get("/v1/jobs/nope/result"), client.delete("/v1/jobs/nope")):
        assert response.status_code == 404
        assert response.json()["object"] == "error" and response.json()["reason"] == "job_not_found"


def test_failed_job_keeps_its_error(client):
    # a header that probes as WAV but whose data chunk cannot be decoded by the worker is hard
    # to build reliably; a too-short clip passes the API's probe and fails in the encoder
    import base64
    import io

    import numpy as np
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(80, dtype=np.float32), 16_000, format="WAV")
    clip = base64.b64encode(buffer.getvalue()).decode()
    accepted = client.post("/v1/embed/speaker", headers=ASYNC, json={"model": "harmonyspeech-encoder", "input_audio": clip})
    job = poll(client, accepted.json()["id"])
    assert job["status"] == "failed" and job["error"]["type"] == "BadRequestError" and job["error"]["code"] == 400
    result = client.get(f"/v1/jobs/{job['id']}/result")
    assert result.status_code == 400 and "too short" in result.json()["message"]
    sync = client.post("/v1/embed/speaker", json={"model": "harmonyspeech-encoder", "input_audio": clip})
    assert sync.status_code == 400 and sync.json()["object"] == "error"


def test_sync_wait_that_runs_out_is_a_504_with_the_job_id(client, paused):
    clip = b64_audio("cmu_arctic_us_axb_a0005.wav")
    with paused("vad-aux"):
        started = time.monotonic()
        response = client.post("/v1/audio/vad", headers={"Prefer": "wait=0"},
                               json={"model": "vad-aux", "input_audio": clip})
        assert time.monotonic() - started < 2  # wait=0 means no wait, not the default
        assert response.status_code == 504, response.text
        job_id = response.json()["job_id"]
        assert response.headers["location"] == f"/v1/jobs/{job_id}"
        assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "queued"  # the job is still there


def test_the_job_behind_a_504_finishes(client):
    noise = b64_audio("noise_exercise_bike.wav")
    response = client.post("/v1/audio/vad", headers={"Prefer": "wait=0.001"},
                           json={"model": "vad-aux", "input_audio": noise})
    assert response.status_code == 504, response.text
    assert poll(client, response.json()["job_id"])["status"] == "succeeded"  # the job kept running


def test_a_job_recorded_by_an_older_version_is_a_clear_410(client, redis_server):
    """A record written before job plans (a rolling deploy) is not misread or a 500."""
    import redis

    from jobcontract.keys import job_key

    old = redis.Redis.from_url(redis_server.url)
    old.hset(job_key("pre-plan-job"), mapping={"id": "pre-plan-job", "model": "silero-vad", "capability": "vad",
                                               "status": "queued", "created_at": repr(time.time()), "parts": "0"})
    old.expire(job_key("pre-plan-job"), 60)
    response = client.get("/v1/jobs/pre-plan-job")
    assert response.status_code == 410 and response.json()["reason"] == "job_format_unsupported"
