"""The step task, run in this process against a real Redis and real models (RNNoise, Silero
VAD), without a Celery worker in between: what one step does with its plan."""

import io
import time

import numpy as np
import pytest
import redis
import soundfile
from celery.exceptions import Reject

from jobcontract.keys import job_key, step_output_key
from jobcontract.payload import AudioOutput, JobInput
from jobcontract.plan import JobPlan
from jobcontract.settings import worker_settings
from speechmodels import ModelConfig, load_model
from speechmodels.registry import AUDIO_CONVERSION, SPEECH_SYNTHESIS, VAD
from speechmodels.tts import SynthesizedSpeech
from tests.fleet import create_job, fixture_audio, single_step_plan
from workers import runtime, tasks
from workers.batcher import MicroBatcher
from workers.celery_app import app

MODELS = [ModelConfig(name="t-rnnoise", model="package:pyrnnoise", model_type="RNNoiseDenoiser", max_batch_size=2),
          ModelConfig(name="t-vad", model="package:silero_vad", model_type="SileroVAD", max_batch_size=2)]


@pytest.fixture(scope="module")
def served(private_redis):
    patch = pytest.MonkeyPatch()
    patch.setenv("REDIS_URL", private_redis.url)
    for cached in (worker_settings, tasks.job_store, tasks.metrics):
        cached.cache_clear()
    for config in MODELS:
        model = load_model(config)
        runtime.SERVED[config.name] = runtime.ServedModel(
            config, model, MicroBatcher(model.infer_batch, max_batch_size=2, max_wait_ms=5, name=config.name))
    yield redis.Redis.from_url(private_redis.url, decode_responses=True)
    for config in MODELS:
        runtime.SERVED.pop(config.name).batcher.close()
    patch.undo()
    for cached in (worker_settings, tasks.job_store, tasks.metrics):
        cached.cache_clear()


def _noise(seconds: float = 1.0, rate: int = 16_000) -> bytes:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    soundfile.write(buffer, (0.1 * rng.standard_normal(int(seconds * rate))).astype(np.float32), rate, format="WAV")
    return buffer.getvalue()


def test_a_one_step_job_ends_with_its_result(served):
    create_job(served, "t-vad-1", single_step_plan("t-vad", VAD),
               JobInput({"audio": fixture_audio("jfk.flac"), "get_timestamps": True}))
    result = tasks.run_step("t-vad-1", 0)
    record = tasks.job_store().get("t-vad-1")
    assert record.status == "succeeded" and record.result == result and result["speech_activity"] is True
    assert record.steps[0]["name"] == "t-vad" and record.steps[0]["batch_size"] == 1


def test_a_chain_keeps_each_output_for_the_next_step_and_encodes_the_last(served):
    plan = JobPlan.build("t-rnnoise", AUDIO_CONVERSION, [("t-rnnoise", AUDIO_CONVERSION)] * 2)
    create_job(served, "t-chain", plan, JobInput({"audio": _noise()}, output=AudioOutput("flac")))
    assert tasks.run_step("t-chain", 0) == 0
    kept = SynthesizedSpeech.from_bytes(tasks.job_store().step_output("t-chain", 0))
    assert kept.sample_rate == 16_000 and served.hget(job_key("t-chain"), "status") == "running"
    assert tasks.run_step("t-chain", 0) == 0  # a second delivery of a done step returns at once
    assert tasks.job_store().get("t-chain").attempts == 1
    result = tasks.run_step("t-chain", 1)
    assert result["format"] == "flac" and result["sample_rate"] == 16_000
    assert tasks.job_store().get("t-chain").status == "succeeded"


def test_a_join_assembles_the_parts_in_order(served):
    plan = JobPlan.build("t-rnnoise", SPEECH_SYNTHESIS, [("t-rnnoise", SPEECH_SYNTHESIS)], parts=2)
    create_job(served, "t-join", plan, JobInput({}, parts=[{}, {}], output=AudioOutput("wav")))
    tones = [SynthesizedSpeech(np.full(1600, level, dtype=np.float32), 16_000) for level in (0.1, 0.3)]
    served.hset(job_key("t-join"), "status", "running")
    for index, tone in enumerate(tones):  # the parts' outputs, as their steps left them
        served.set(step_output_key("t-join", index), tone.to_bytes())
    result = tasks.run_step("t-join", 2)
    assert result["duration"] == pytest.approx(0.2 + 0.25, abs=1e-3)
    record = tasks.job_store().get("t-join")
    assert record.status == "succeeded" and record.steps[-1]["name"] == "join"


def test_bad_input_fails_its_own_job_with_a_4xx(served):
    create_job(served, "t-bad", single_step_plan("t-vad", VAD), JobInput({"audio": b"not audio at all"}))
    with pytest.raises(tasks.JobFailed):
        tasks.run_step("t-bad", 0)
    record = tasks.job_store().get("t-bad")
    assert record.status == "failed" and 400 <= record.error.status < 500 and record.error.reason


def test_a_step_for_a_model_this_worker_does_not_serve_goes_back(served):
    create_job(served, "t-elsewhere", single_step_plan("not-here", VAD), JobInput({"audio": b""}))
    with pytest.raises(Reject):
        tasks.run_step("t-elsewhere", 0)
    assert served.hget(job_key("t-elsewhere"), "status") == "queued"


def test_a_message_of_the_format_before_plans_fails_its_job_clearly(served):
    create_job(served, "t-old", single_step_plan("t-vad", VAD), JobInput({"audio": fixture_audio("jfk.flac")}))
    with pytest.raises(tasks.JobFailed):
        app.tasks["speechfleet.infer"]("t-old", "t-vad", VAD, 0)
    record = tasks.job_store().get("t-old")
    assert record.status == "failed" and record.error.reason == "job_format_unsupported"
    assert "submit it again" in record.error.message


def test_a_step_delivered_again_after_its_job_ended_asks_for_the_webhook_again(served, monkeypatch):
    """A worker killed between ending a job and enqueueing its webhook leaves the step's message
    unacknowledged; its next delivery finds the job ended and must enqueue the webhook itself
    (the delivery task drops duplicates), or the callback is never called."""
    enqueued: list[str] = []
    monkeypatch.setattr(tasks, "enqueue_delivery", enqueued.append)
    create_job(served, "t-hook", single_step_plan("t-vad", VAD), JobInput({"audio": fixture_audio("jfk.flac")}),
               callback_url="http://127.0.0.1:9/hook")
    tasks.run_step("t-hook", 0)
    assert tasks.job_store().get("t-hook").status == "succeeded" and enqueued == ["t-hook"]
    assert tasks.run_step("t-hook", 0) is None  # delivered again: nothing runs twice
    assert enqueued == ["t-hook", "t-hook"] and tasks.job_store().get("t-hook").attempts == 1
    create_job(served, "t-no-hook", single_step_plan("t-vad", VAD), JobInput({"audio": fixture_audio("jfk.flac")}))
    tasks.run_step("t-no-hook", 0)
    tasks.run_step("t-no-hook", 0)
    assert enqueued == ["t-hook", "t-hook"]  # no callback, no delivery


@pytest.fixture
def patient_vad(served):
    """t-vad behind a batcher that waits up to a minute for its second item: a batch of 2 forms
    only if both items are submitted before either is waited on. Yields the usual served model."""
    served_vad = runtime.SERVED["t-vad"]
    patient = MicroBatcher(served_vad.model.infer_batch, max_batch_size=2, max_wait_ms=60_000, name="patient")
    runtime.SERVED["t-vad"] = runtime.ServedModel(served_vad.config, served_vad.model, patient)
    yield served_vad
    runtime.SERVED["t-vad"] = served_vad
    patient.close()


def test_jobs_sent_in_one_message_share_a_batch_and_fail_alone(served, patient_vad):
    """``run_steps``: every job of the message is handed to the batcher before any is waited on
    (so the two good ones share a batch of 2), each ends with its own result, a bad input fails
    its own job only, and a job with no record is skipped."""
    clips = {"t-group-jfk": "jfk.flac", "t-group-arctic": "cmu_arctic_us_aew_a0001.wav"}
    for job_id, name in clips.items():
        create_job(served, job_id, single_step_plan("t-vad", VAD),
                   JobInput({"audio": fixture_audio(name), "get_timestamps": True}))
    create_job(served, "t-group-bad", single_step_plan("t-vad", VAD), JobInput({"audio": b"not audio at all"}))
    started = time.monotonic()
    tasks.run_steps(["t-group-jfk", "t-group-bad", "t-group-arctic", "t-group-never-accepted"])
    assert time.monotonic() - started < 30  # the batch did not wait out its minute
    records = {job_id: tasks.job_store().get(job_id) for job_id in [*clips, "t-group-bad"]}
    for job_id, name in clips.items():
        record = records[job_id]
        assert record.status == "succeeded", (job_id, record.error)
        assert record.steps[0]["batch_size"] == 2 and record.steps[0]["message_jobs"] == 4
    runtime.SERVED["t-vad"] = patient_vad  # the usual batcher: the answer each job gets on its own
    for job_id, name in clips.items():
        alone = {"audio": fixture_audio(name), "get_timestamps": True}
        create_job(served, f"{job_id}-alone", single_step_plan("t-vad", VAD), JobInput(alone))
        assert records[job_id].result == tasks.run_step(f"{job_id}-alone", 0)
    assert records["t-group-jfk"].result["timestamps"] != records["t-group-arctic"].result["timestamps"]
    bad = records["t-group-bad"]
    assert bad.status == "failed" and 400 <= bad.error.status < 500 and bad.error.reason
    assert tasks.job_store().get("t-group-never-accepted") is None


def test_a_message_of_jobs_is_delivered_again_only_the_unfinished_run(served):
    for job_id in ("t-again-1", "t-again-2"):
        create_job(served, job_id, single_step_plan("t-vad", VAD), JobInput({"audio": fixture_audio("jfk.flac")}))
    tasks.run_step("t-again-1", 0)  # ended before the message came (again)
    tasks.run_steps(["t-again-1", "t-again-2"])
    first, second = tasks.job_store().get("t-again-1"), tasks.job_store().get("t-again-2")
    assert first.status == second.status == "succeeded"
    assert first.attempts == 1 and second.attempts == 1
    assert "message_jobs" not in first.steps[0] and second.steps[0]["message_jobs"] == 2


def test_a_message_of_jobs_for_a_model_this_worker_does_not_serve_goes_back_whole(served):
    create_job(served, "t-mixed-here", single_step_plan("t-vad", VAD), JobInput({"audio": fixture_audio("jfk.flac")}))
    create_job(served, "t-mixed-elsewhere", single_step_plan("not-here", VAD), JobInput({"audio": b""}))
    with pytest.raises(Reject):
        tasks.run_steps(["t-mixed-here", "t-mixed-elsewhere"])
    # nothing started: the message goes back with every job still queued
    assert served.hget(job_key("t-mixed-here"), "status") == "queued"
    assert served.hget(job_key("t-mixed-elsewhere"), "status") == "queued"
