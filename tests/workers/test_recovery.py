"""Jobs whose Celery message vanished (kombu's BRPOP-to-unacked window) are sent again."""

import io
import json
import time

import httpx
import numpy as np
import pytest
import redis
import soundfile
from celery import Celery

from jobcontract.keys import (
    PENDING_KEY,
    SWEEPER_LOCK_KEY,
    job_key,
    step_field,
    step_output_key,
)
from jobcontract.payload import AudioOutput, JobInput
from jobcontract.plan import JobPlan
from jobcontract.priorities import queue_keys
from speechmodels.tts import SynthesizedSpeech, fade_edges
from tests.fleet import create_job, fixture_audio, single_step_plan
from workers.recovery import UNACKED_KEY, LostJobSweeper


def orphan_job(client: redis.Redis, job_id: str, model: str, payload: dict, age_s: float) -> None:
    create_job(client, job_id, single_step_plan(model, "vad"), JobInput(payload), age_s)


def fake_message(job_id: str) -> str:
    return json.dumps({"body": "", "headers": {"id": job_id, "task": "speechfleet.infer"}, "properties": {}})


@pytest.fixture
def celery_for(private_redis):
    app = Celery("sweeper-test", broker=private_redis.url)
    app.conf.task_serializer = "json"
    yield app
    app.close()


def test_sweeper_resends_only_jobs_with_no_message(private_redis, celery_for):
    client = redis.Redis.from_url(private_redis.url, decode_responses=True)
    client.delete(PENDING_KEY, UNACKED_KEY, "model.sweep-test")
    for job_id in ("in-queue", "in-unacked", "lost", "fresh"):
        orphan_job(client, job_id, "sweep-test", {"audio": b"x"}, age_s=0 if job_id == "fresh" else 100)
    client.lpush("model.sweep-test", fake_message("in-queue"))
    client.hset(UNACKED_KEY, "tag-1", json.dumps([json.loads(fake_message("in-unacked")), "", "model.sweep-test"]))
    done_plan = single_step_plan("sweep-test", "vad").to_json()
    client.hset(job_key("done"), mapping={"status": "succeeded", "plan": done_plan})
    client.zadd(PENDING_KEY, {"done": 0})

    sweeper = LostJobSweeper(client, celery_for, "w1", quiet_after_s=30, interval_s=1)
    assert sweeper.sweep() == ["lost"]
    assert client.hget(job_key("lost"), "resent") == "1"
    queued = [json.loads(raw)["headers"]["id"]
              for key in queue_keys("model.sweep-test") for raw in client.lrange(key, 0, -1)]
    assert sorted(queued) == ["in-queue", "lost"]
    assert client.zscore(PENDING_KEY, "done") is None  # finished jobs leave the watch list
    assert client.zscore(PENDING_KEY, "lost") > time.time() - 5  # and resent ones are quiet from now
    client.delete(SWEEPER_LOCK_KEY)
    assert sweeper.sweep() == []  # nothing is quiet any more
    client.delete(SWEEPER_LOCK_KEY, UNACKED_KEY, "model.sweep-test", PENDING_KEY)


def test_only_one_worker_sweeps_at_a_time(private_redis, celery_for):
    client = redis.Redis.from_url(private_redis.url, decode_responses=True)
    client.delete(SWEEPER_LOCK_KEY)
    orphan_job(client, "lonely", "sweep-test-2", {"audio": b"x"}, age_s=100)
    first = LostJobSweeper(client, celery_for, "w1", quiet_after_s=30, interval_s=5)
    second = LostJobSweeper(client, celery_for, "w2", quiet_after_s=30, interval_s=5)
    assert first.sweep() == ["lonely"]
    assert second.sweep() == []
    client.delete("model.sweep-test-2", PENDING_KEY)


def test_a_live_fleet_recovers_a_job_whose_message_was_lost(fleet, redis_server):
    client = redis.Redis.from_url(redis_server.url)
    orphan_job(client, "orphan-1", "vad-aux", {"audio": fixture_audio("jfk.flac"), "get_timestamps": True}, age_s=60)
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=fleet.base_url) as http:
        while (job := http.get("/v1/jobs/orphan-1").json())["status"] != "succeeded":
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        assert job["resent"] == 1 and job["attempts"] == 1
        assert http.get("/v1/jobs/orphan-1/result").json()["speech_activity"] is True


def test_a_chord_whose_messages_were_lost_is_sent_again_whole(fleet, redis_server):
    """A speech job split into sentences lost its messages after its first sentence was done:
    the sweeper sends the chord again, the done sentence is not synthesised twice, and the
    join assembles all three."""
    client = redis.Redis.from_url(redis_server.url)
    job_input = JobInput({"voice": None, "speed": 1.0},
                         parts=[{"text": "First sentence."}, {"text": "Second sentence."}, {"text": "Third one."}],
                         output=AudioOutput("wav"))
    plan = JobPlan.build("piper", "tts", [("piper", "tts")], parts=3)
    create_job(client, "orphan-chord", plan, job_input, age_s=60, render={"dialect": "openai"})
    # the first sentence's stored output: a tone no voice makes, to find in the joined audio
    tone = (0.25 * np.sin(2 * np.pi * 1000 * np.arange(2205) / 22_050)).astype(np.float32)
    client.set(step_output_key("orphan-chord", 0), SynthesizedSpeech(tone, 22_050).to_bytes())
    client.hset(job_key("orphan-chord"), mapping={
        "status": "running", step_field(0): json.dumps({"name": "piper[0]", "model": "piper", "queue": "model.piper",
                                                        "status": "succeeded"})})
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=fleet.base_url) as http:
        while (job := http.get("/v1/jobs/orphan-chord").json())["status"] != "succeeded":
            assert job["status"] == "running" and time.monotonic() < deadline, job
            time.sleep(0.2)
        assert job["resent"] >= 1
        assert [step["name"] for step in job["steps"]] == ["piper[0]", "piper[1]", "piper[2]", "join"]
        assert job["steps"][0].get("worker") is None  # the part done before the loss did not run again
        result = http.get("/v1/jobs/orphan-chord/result")
    samples, rate = soundfile.read(io.BytesIO(result.content), dtype="float32")
    assert rate == 22_050 and samples.size > 22_050
    assert np.allclose(samples[: tone.size], fade_edges(tone, rate), atol=1e-3)


def test_a_message_of_several_jobs_counts_for_each_of_them(private_redis, celery_for):
    client = redis.Redis.from_url(private_redis.url, decode_responses=True)
    client.delete(PENDING_KEY, UNACKED_KEY, SWEEPER_LOCK_KEY, "model.sweep-group")
    for job_id in ("held1", "held2", "queued1", "queued2", "lost1"):
        orphan_job(client, job_id, "sweep-group", {"audio": b"x"}, age_s=100)
    client.lpush("model.sweep-group", fake_message("queued1+queued2"))
    client.hset(UNACKED_KEY, "tag-g", json.dumps([json.loads(fake_message("held1+held2")), "", "model.sweep-group"]))
    sweeper = LostJobSweeper(client, celery_for, "w1", quiet_after_s=30, interval_s=1)
    assert sweeper.sweep() == ["lost1"]
    client.delete(PENDING_KEY, UNACKED_KEY, SWEEPER_LOCK_KEY, "model.sweep-group")
