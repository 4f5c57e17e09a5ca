from __future__ import annotations

import base64
import contextlib
import time
from pathlib import Path

import httpx
import pytest
import yaml
from celery import Celery

from speechfleet.redis_server import EmbeddedRedis
from tests.checkpoints import (
    VF_HOP,
    build_harmonyspeech,
    build_melotts,
    build_openvoice_v1,
    build_openvoice_v2,
    build_voicefixer,
)
from tests.fleet import TEST_CONFIG, Fleet, fixture_audio


@pytest.fixture(scope="session")
def redis_server():
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture(scope="module")
def private_redis():
    """A Redis of the module's own, for tests that must not meet the shared fleet's sweepers."""
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture(scope="session")
def fleet_config(tmp_path_factory) -> Path:
    """The test models, plus the VoiceFixer, HarmonySpeech, OpenVoice and MeloTTS families on small
    random checkpoints in the published layouts (built here: the real weights cannot be
    downloaded)."""
    folder = tmp_path_factory.mktemp("voicefixer-checkpoints")
    build_voicefixer(folder)
    harmony = build_harmonyspeech(tmp_path_factory.mktemp("harmony-speech-v1"))
    openvoice = build_openvoice_v2(tmp_path_factory.mktemp("openvoicev2"))
    openvoice_v1 = build_openvoice_v1(tmp_path_factory.mktemp("openvoice"))
    melo = build_melotts(tmp_path_factory.mktemp("melotts-english"))
    document = yaml.safe_load(TEST_CONFIG.read_text())
    document["model_configs"] += [
        {"name": "vf-restorer", "model": str(folder), "model_type": "VoiceFixerRestorer", "max_batch_size": 2,
         "options": {"hop_length": VF_HOP}},
        {"name": "vf-vocoder", "model": str(folder), "model_type": "VoiceFixerVocoder", "max_batch_size": 2},
        *({"name": f"hs-{part}", "model": str(harmony), "model_type": f"HarmonySpeech{part.title()}",
           "max_batch_size": 2} for part in ("encoder", "synthesizer", "vocoder")),
        {"name": "ov-encoder", "model": str(openvoice), "model_type": "OpenVoiceV2ToneConverterEncoder",
         "max_batch_size": 2},
        {"name": "ov-converter", "model": str(openvoice), "model_type": "OpenVoiceV2ToneConverter", "max_batch_size": 2},
        {"name": "ov-melo", "model": str(melo), "model_type": "MeloTTSSynthesizer", "max_batch_size": 2},
        *({"name": f"ov1-{part}", "model": str(openvoice_v1), "model_type": family, "max_batch_size": 2}
          for part, family in (("encoder", "OpenVoiceV1ToneConverterEncoder"), ("converter", "OpenVoiceV1ToneConverter"),
                               ("synthesizer", "OpenVoiceV1Synthesizer"))),
    ]
    path = folder / "config.yml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture(scope="session")
def fleet(redis_server, fleet_config):
    """API + one worker per test model, shared by the API tests."""
    running = Fleet(redis_server, config=fleet_config)
    for models in ("silero-vad", "harmonyspeech-encoder", "vad-aux", "whisper", "whisper-base", "piper", "rnnoise",
                   "speaker-diarizer"):
        running.start_worker(models)
    running.start_worker("vf-restorer,vf-vocoder", name="voicefixer")  # one process, two queues
    running.start_worker("hs-encoder,hs-synthesizer,hs-vocoder", name="harmonyspeech")
    running.start_worker("ov-encoder,ov-converter,ov-melo", name="openvoice")
    running.start_worker("ov1-encoder,ov1-synthesizer,ov1-converter", name="openvoice_v1")
    running.start_webhook_worker()
    running.start_api()
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


@pytest.fixture
def paused(fleet, redis_server):
    """``with paused("vad-aux"):`` the model's workers stop taking jobs from its queue (Celery
    remote control), so jobs sent meanwhile stay queued; they resume on leaving the block."""
    app = Celery("control", broker=redis_server.url)

    @contextlib.contextmanager
    def pause(model_name: str):
        queue = f"model.{model_name}"
        replies = app.control.cancel_consumer(queue, reply=True, timeout=5)
        # the model's own workers (ids are "<model>+<model>@host.pid"): only they consume
        # again after the block; a broadcast add would make every other worker take the
        # model's messages and bounce them back (misrouted), scrambling their order
        consumers = [hostname for reply in replies for hostname in reply
                     if model_name in hostname.partition("@")[0].split("+")]
        assert consumers, replies
        # a worker replies when it has scheduled the cancel, not when it took effect: wait until
        # each of them answers (a busy worker can miss a 1 s inspect, and an absent reply is not
        # a "no") without listing the queue, or jobs sent now could still be taken in FIFO order
        deadline = time.monotonic() + 15
        while True:
            listed = app.control.inspect(destination=consumers, timeout=1).active_queues() or {}
            if set(listed) >= set(consumers) and not any(queue in {q["name"] for q in queues}
                                                         for queues in listed.values()):
                break
            assert time.monotonic() < deadline, f"{queue} is still consumed: {listed}"
            time.sleep(0.1)
        try:
            yield
        finally:
            app.control.add_consumer(queue, destination=consumers, reply=True, timeout=5)

    yield pause
    app.close()


@pytest.fixture
def client(fleet):
    with httpx.Client(base_url=fleet.base_url, timeout=120) as http:
        yield http


def b64_audio(name: str) -> str:
    return base64.b64encode(fixture_audio(name)).decode()
