"""A worker SIGKILLed with a batch in flight loses no accepted job."""

import time

import httpx

from tests.conftest import b64_audio

ASYNC = {"Prefer": "respond-async"}
JOBS = 40


def statuses(http, ids):
    return [http.get(f"/v1/jobs/{job_id}").json() for job_id in ids]


def test_sigkill_mid_batch_loses_no_job(fleet):
    noise = b64_audio("noise_exercise_bike.wav")  # one minute: a batch of 4 runs long enough to be caught
    with httpx.Client(base_url=fleet.base_url, timeout=60) as http:
        ids = []
        for _ in range(JOBS):
            response = http.post("/v1/audio/vad", headers=ASYNC, json={"model": "vad-aux", "input_audio": noise})
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
        # wait until a batch is in flight, then kill the worker without warning
        deadline = time.monotonic() + 30
        while not any(job["status"] == "running" for job in statuses(http, ids)):
            assert time.monotonic() < deadline, "no job ever started"
            time.sleep(0.02)
        fleet.kill_worker("vad-aux")
        at_kill = statuses(http, ids)
        in_flight = [job["id"] for job in at_kill if job["status"] == "running"]
        done_before = sum(job["status"] == "succeeded" for job in at_kill)
        assert in_flight, "the kill did not catch a batch in flight"
        assert done_before < JOBS

        fleet.start_worker("vad-aux")
        deadline = time.monotonic() + 120
        while True:
            final = statuses(http, ids)
            if all(job["status"] == "succeeded" for job in final):
                break
            assert time.monotonic() < deadline, {job["id"]: job["status"] for job in final if job["status"] != "succeeded"}
            time.sleep(0.25)

        lost = [job["id"] for job in final if job["status"] != "succeeded"]
        assert lost == []
        retried = {job["id"]: job["attempts"] for job in final if job["id"] in in_flight}
        assert all(attempts >= 2 for attempts in retried.values()), retried  # the killed batch ran again
        results = {tuple(map(str, http.get(f"/v1/jobs/{job_id}/result").json()["timestamps"] or [])) for job_id in ids}
        assert len(results) == 1  # every job, retried or not, gives the same answer
