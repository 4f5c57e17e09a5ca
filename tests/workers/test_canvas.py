"""Inference tasks stay plain Celery tasks: chains and chords of them run across the model
queues, through the micro-batchers (the reason celery-batches was not used)."""

import time

import pytest
import redis
from celery import Celery, chain, chord

from jobcontract.keys import job_key
from jobcontract.payload import JobInput
from tests.fleet import create_job, fixture_audio, single_step_plan
from workers.celery_app import STEP_TASK


@pytest.fixture
def canvas(fleet, redis_server):
    app = Celery("canvas-test", broker=redis_server.url, backend=redis_server.url)
    app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])
    client = redis.Redis.from_url(redis_server.url)

    def step(job_id: str, model: str, capability: str, payload: dict, **options):
        create_job(client, job_id, single_step_plan(model, capability), JobInput(payload))
        return app.signature(STEP_TASK, args=(job_id, 0), immutable=True,
                             queue=f"model.{model}", task_id=job_id, **options)

    def finished(job_id: str) -> dict:
        deadline = time.monotonic() + 60
        while True:
            raw = {k.decode(): v.decode() for k, v in client.hgetall(job_key(job_id)).items()}
            if raw["status"] in ("succeeded", "failed"):
                return raw
            assert time.monotonic() < deadline, raw
            time.sleep(0.05)

    yield step, finished
    app.close()


def test_a_chain_runs_its_steps_in_order_across_queues(canvas):
    step, finished = canvas
    speech = {"audio": fixture_audio("jfk.flac"), "get_timestamps": True}
    voice = {"audio": fixture_audio("cmu_arctic_us_aew_a0001.wav")}
    chain(step("chain-1", "silero-vad", "vad", speech), step("chain-2", "harmonyspeech-encoder", "embed", voice),
          step("chain-3", "vad-aux", "vad", speech)).apply_async()
    first, second, third = finished("chain-1"), finished("chain-2"), finished("chain-3")
    assert first["status"] == second["status"] == third["status"] == "succeeded"
    assert float(first["finished_at"]) <= float(second["started_at"])
    assert float(second["finished_at"]) <= float(third["started_at"])


def test_a_chord_runs_its_callback_after_every_header_task(canvas):
    step, finished = canvas
    clips = ["cmu_arctic_us_aew_a0002.wav", "cmu_arctic_us_axb_a0004.wav", "cmu_arctic_us_axb_a0005.wav"]
    header = [step(f"chord-h{i}", "harmonyspeech-encoder", "embed", {"audio": fixture_audio(name)}, ignore_result=False)
              for i, name in enumerate(clips)]
    callback = step("chord-body", "silero-vad", "vad", {"audio": fixture_audio("jfk.flac")})
    chord(header)(callback)
    heads = [finished(f"chord-h{i}") for i in range(len(clips))]
    body = finished("chord-body")
    assert all(head["status"] == "succeeded" for head in heads) and body["status"] == "succeeded"
    assert max(float(head["finished_at"]) for head in heads) <= float(body["started_at"])
