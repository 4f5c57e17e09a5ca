"""A worker SIGKILLed with a batch in flight, a chord part or a pipeline's middle step loses no
accepted job."""

import time

import httpx
import redis
from celery import Celery

from jobcontract.payload import JobInput
from speechmodels.registry import VAD
from tests.conftest import b64_audio
from tests.fleet import create_job, fixture_audio, single_step_plan
from workers.canvas import send_one_step_jobs

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
        kill_mid_batch_and_recover(fleet, http, ids)


def test_sigkill_mid_batch_of_jobs_sent_in_shared_messages_loses_no_job(fleet, redis_server):
    """Jobs sent several to a message (``workers.canvas.send_one_step_jobs``, as the API sends
    jobs that reach it at once): the killed worker's messages go back whole, and every job
    that had not ended runs again."""
    client = redis.Redis.from_url(redis_server.url)
    noise = fixture_audio("noise_exercise_bike.wav")
    ids = [f"shared-kill-{index:02d}" for index in range(JOBS)]
    for job_id in ids:
        create_job(client, job_id, single_step_plan("vad-aux", VAD), JobInput({"audio": noise}))
    sender = Celery("shared-kill", broker=redis_server.url)
    sender.conf.task_serializer = "json"
    for start in range(0, JOBS, 4):
        send_one_step_jobs(sender, ids[start:start + 4], "vad-aux")
    sender.close()
    with httpx.Client(base_url=fleet.base_url, timeout=60) as http:
        final = kill_mid_batch_and_recover(fleet, http, ids)
    assert all(job["steps"][0]["message_jobs"] == 4 for job in final)


def kill_mid_batch_and_recover(fleet, http: httpx.Client, ids: list[str]) -> list[dict]:
    """SIGKILL the vad-aux worker once a batch of ``ids`` is in flight, start it again, and check
    that every job ends, the killed batch run again, all with the same answer."""
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
    assert done_before < len(ids)

    fleet.start_worker("vad-aux")
    deadline = time.monotonic() + 120
    while True:
        final = statuses(http, ids)
        if all(job["status"] == "succeeded" for job in final):
            break
        assert time.monotonic() < deadline, {job["id"]: (job["status"], job["error"]) for job in final
                                             if job["status"] != "succeeded"}
        time.sleep(0.25)

    lost = [job["id"] for job in final if job["status"] != "succeeded"]
    assert lost == []
    retried = {job["id"]: job["attempts"] for job in final if job["id"] in in_flight}
    assert all(attempts >= 2 for attempts in retried.values()), retried  # the killed batch ran again
    results = {tuple(map(str, http.get(f"/v1/jobs/{job_id}/result").json()["timestamps"] or [])) for job_id in ids}
    assert len(results) == 1  # every job, retried or not, gives the same answer
    return final


def test_sigkill_of_a_worker_mid_chord_loses_no_sentence(fleet):
    """A long text's sentences are shared by two workers; one is killed while it synthesises
    a sentence. The job still ends with every sentence, the lost ones run by the survivor."""
    from tests.api.test_speech import LONG_TEXT

    victim = fleet.start_worker("piper", name="piper-victim")
    with httpx.Client(base_url=fleet.base_url, timeout=60) as http:
        deadline = time.monotonic() + 120
        while http.get("/ready").json()["models"].get("piper", 0) < 2:
            assert time.monotonic() < deadline and victim.poll() is None, "victim worker did not start"
            time.sleep(0.3)
        response = http.post("/v1/audio/speech", headers=ASYNC,
                             json={"model": "piper", "input": LONG_TEXT, "response_format": "wav"})
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        victim_id = f".{victim.pid}"
        deadline = time.monotonic() + 60
        while True:
            steps = http.get(f"/v1/jobs/{job_id}").json()["steps"]
            caught = [s["name"] for s in steps if s["status"] == "running" and s["worker"].endswith(victim_id)]
            if caught:
                break
            assert time.monotonic() < deadline, steps
            time.sleep(0.02)
        fleet.kill_worker("piper-victim")
        del fleet.workers["piper-victim"]
        deadline = time.monotonic() + 180
        while (job := http.get(f"/v1/jobs/{job_id}").json())["status"] != "succeeded":
            assert job["status"] == "running" and time.monotonic() < deadline, job
            time.sleep(0.5)
        sentences = {step["name"]: step for step in job["steps"][:-1]}
        assert all(step["status"] == "succeeded" for step in sentences.values())
        # what the victim had in hand was run again, by the survivor
        assert all(not sentences[name]["worker"].endswith(victim_id) for name in caught)
        result = http.get(f"/v1/jobs/{job_id}/result")
        assert result.status_code == 200 and len(result.content) > 100 * 22_050 * 2


def test_sigkill_of_a_middle_step_worker_loses_no_pipeline(fleet):
    """openvoice_v1 runs VAD -> encoder -> base speaker -> converter; a second base-speaker
    worker is killed while it synthesises for one of several jobs. Every job still ends
    with all four steps, the killed step run again by the surviving worker."""
    from tests.api.test_speech import LONG_TEXT

    victim = fleet.start_worker("ov1-synthesizer", name="ov1-victim")
    reference = b64_audio("cmu_arctic_us_aew_a0003.wav")
    with httpx.Client(base_url=fleet.base_url, timeout=60) as http:
        deadline = time.monotonic() + 120
        while http.get("/ready").json()["models"].get("ov1-synthesizer", 0) < 2:
            assert time.monotonic() < deadline and victim.poll() is None, "victim worker did not start"
            time.sleep(0.3)
        ids = []
        for _ in range(4):
            response = http.post("/v1/audio/speech", headers=ASYNC, json={
                "model": "openvoice_v1", "input": LONG_TEXT[:800], "input_audio": reference, "voice": "friendly"})
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
        victim_id = f".{victim.pid}"
        deadline = time.monotonic() + 90
        caught = None
        while caught is None:
            for job in statuses(http, ids):
                steps = job["steps"]
                if len(steps) > 2 and steps[2]["status"] == "running" and steps[2]["worker"].endswith(victim_id):
                    caught = job["id"]
            assert time.monotonic() < deadline, statuses(http, ids)
            time.sleep(0.02)
        fleet.kill_worker("ov1-victim")
        del fleet.workers["ov1-victim"]
        deadline = time.monotonic() + 180
        jobs = statuses(http, ids)
        while not all(job["status"] == "succeeded" for job in jobs):
            assert all(job["status"] in ("queued", "running", "succeeded") for job in jobs), jobs
            assert time.monotonic() < deadline, jobs
            time.sleep(0.5)
            jobs = statuses(http, ids)
        for job in jobs:
            assert [step["name"] for step in job["steps"]] == ["silero-vad", "ov1-encoder", "ov1-synthesizer",
                                                               "ov1-converter"]
            assert all(step["status"] == "succeeded" for step in job["steps"])
        rerun = next(job for job in jobs if job["id"] == caught)["steps"][2]
        assert not rerun["worker"].endswith(victim_id)  # the survivor ran the killed step again
        result = http.get(f"/v1/jobs/{caught}/result")
        assert result.status_code == 200 and len(result.content) > 22_050
