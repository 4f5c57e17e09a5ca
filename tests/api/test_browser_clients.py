"""What browser clients and Open WebUI need: CORS, HSE's /health keys, Whisper-shaped
timestamps, the harmonyspeech embedding card, Open WebUI's discovery calls, and the voice
library (saved through the official openai package, reused on /v1/audio/speech with the
encoder steps skipped), on the shared fleet and on a keyed API replica."""

from __future__ import annotations

import base64
import io
import time

import httpx
import numpy as np
import pytest
import soundfile
from fastapi.testclient import TestClient
from openai import NotFoundError, OpenAI
from pydantic import ValidationError

from api.app import create_app
from jobcontract.settings import APISettings
from tests.conftest import b64_audio
from tests.fleet import FIXTURES, TEST_CONFIG, Fleet

HSE_KEYS = ("text_to_speech", "speech_to_text", "voice_conversion", "voice_embedding", "voice_activity_detection")
WHISPER_SEGMENT = {"id", "seek", "start", "end", "text", "tokens", "avg_logprob", "compression_ratio",
                   "no_speech_prob", "words", "temperature"}
BROWSER = "http://localhost:5173"  # where HSE's UI runs in development


def test_preflight_is_answered_for_any_origin_in_development(client):
    response = client.options("/v1/audio/speech", headers={
        "Origin": BROWSER, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == "*"
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "authorization" in response.headers["access-control-allow-headers"].lower()


def test_answers_and_errors_carry_cors_headers(client):
    listed = client.get("/v1/models", headers={"Origin": BROWSER})
    assert listed.status_code == 200 and listed.headers["access-control-allow-origin"] == "*"
    missing = client.post("/v1/audio/vad", headers={"Origin": BROWSER},
                          json={"model": "no-such-model", "input_audio": b64_audio("jfk.flac")})
    assert missing.status_code == 404 and missing.headers["access-control-allow-origin"] == "*"
    spoken = client.post("/v1/audio/speech", headers={"Origin": BROWSER},
                         json={"model": "piper", "input": "Hi.", "response_format": "wav"})
    assert spoken.status_code == 200
    assert "x-job-id" in spoken.headers["access-control-expose-headers"].lower()  # the page reads the job id


def test_cors_origins_setting_and_production_refusal():
    with pytest.raises(ValidationError, match="CORS_ALLOW_ANY_ORIGIN"):
        APISettings(environment="production", api_keys="k", cors_origins="*")
    assert APISettings(environment="production", api_keys="k", cors_origins="*",
                       cors_allow_any_origin=True).allowed_origins == ["*"]
    assert APISettings(environment="production", api_keys="k").allowed_origins == []
    assert APISettings().allowed_origins == ["*"]
    settings = APISettings(config=TEST_CONFIG, cors_origins="http://ui.example, http://other.example")
    assert settings.allowed_origins == ["http://ui.example", "http://other.example"]
    app = TestClient(create_app(settings))  # no lifespan: a preflight never reaches a route or Redis
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    allowed = app.options("/v1/audio/speech", headers={"Origin": "http://ui.example", **preflight})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "http://ui.example"
    refused = app.options("/v1/audio/speech", headers={"Origin": "http://evil.example", **preflight})
    assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
    closed = TestClient(create_app(APISettings(config=TEST_CONFIG, environment="production", api_keys="k")))
    answer = closed.options("/v1/audio/speech", headers={"Origin": BROWSER, **preflight})
    assert "access-control-allow-origin" not in answer.headers


def test_health_answers_hse_keys_from_live_workers(client):
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert {key: body[key] for key in HSE_KEYS} == dict.fromkeys(HSE_KEYS, "healthy")


def test_health_and_listings_of_an_api_without_workers(redis_server, tmp_path):
    """An API whose only model has no worker: every key unhealthy, with the reason."""
    config = tmp_path / "config.yml"
    config.write_text("model_configs:\n  - name: lonely-vad\n    model: package:silero_vad\n    model_type: SileroVAD\n"
                      "  - name: lonely-encoder\n    model: package:resemblyzer\n    model_type: HarmonySpeechEncoder\n")
    lonely = Fleet(redis_server, config=config)
    lonely.start_api()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                body = httpx.get(f"{lonely.base_url}/health", timeout=2).json()
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, lonely.log_tail("api")
                time.sleep(0.2)
        assert body["status"] == "ok"
        assert body["voice_activity_detection"] == "unhealthy: no live worker for lonely-vad"
        assert body["text_to_speech"] == "unhealthy: no model configured for it"
        # the encoder alone (the default config's case): harmonyspeech is still an embedding model
        cards = {card["id"]: card for card in httpx.get(f"{lonely.base_url}/v1/embed/models").json()["data"]}
        assert cards["harmonyspeech"]["object"] == "toolchain" and cards["harmonyspeech"]["steps"] == ["lonely-encoder"]
        assert "openvoice_v1" not in cards
    finally:
        lonely.stop()


def test_hse_transcription_timestamps_are_whisper_segments(client):
    response = client.post("/v1/audio/transcriptions", json={
        "model": "whisper", "input_audio": b64_audio("jfk.flac"), "get_timestamps": True})
    assert response.status_code == 200, response.text
    segments = response.json()["timestamps"]
    assert segments and all(set(segment) == WHISPER_SEGMENT for segment in segments)
    assert [segment["id"] for segment in segments] == list(range(len(segments)))
    first = segments[0]
    assert isinstance(first["tokens"], list) and all(isinstance(token, int) for token in first["tokens"])
    assert 0 <= first["start"] < first["end"] <= 11.1 and first["no_speech_prob"] < 0.5
    assert "ask not what your country" in "".join(segment["text"] for segment in segments).lower()


def test_harmonyspeech_is_listed_for_embeddings_and_echoed(client):
    cards = {card["id"]: card for card in client.get("/v1/embed/models").json()["data"]}
    assert cards["harmonyspeech"]["object"] == "toolchain"
    assert cards["harmonyspeech"]["steps"][0] == "hs-encoder"
    response = client.post("/v1/embed/speaker", json={"model": "harmonyspeech",
                                                      "input_audio": b64_audio("cmu_arctic_us_aew_a0002.wav")})
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "harmonyspeech"
    job = client.get(f"/v1/jobs/{response.json()['id']}").json()
    assert [step["model"] for step in job["steps"]] == ["hs-encoder"]


def test_open_webui_discovers_models_and_voices_without_a_key(fleet):
    # Open WebUI sends no auth header at all
    models = httpx.get(f"{fleet.base_url}/v1/audio/models").json()
    ids = [entry["id"] for entry in models["models"]]
    assert "piper" in ids and "harmonyspeech" in ids and "whisper" not in ids
    assert all(set(entry) == {"id"} for entry in models["models"])
    voices = httpx.get(f"{fleet.base_url}/v1/audio/voices").json()["voices"]
    assert voices and all(set(entry) == {"id", "name"} for entry in voices)
    piper_card = httpx.get(f"{fleet.base_url}/v1/audio/speech/models").json()["data"]
    piper_voices = {voice["voice"] for card in piper_card if card["id"] == "piper"
                    for language in card["languages"] for voice in language["voices"]}
    assert piper_voices and piper_voices <= {entry["id"] for entry in voices}


def _steps(client, job_id: str) -> list[str]:
    return [step["model"] for step in client.get(f"/v1/jobs/{job_id}").json()["steps"]]


def test_a_saved_voice_is_reused_with_its_stored_embedding(fleet, client):
    openai = OpenAI(base_url=f"{fleet.base_url}/v1", api_key="-", timeout=180, max_retries=0)
    with open(FIXTURES / "cmu_arctic_us_aew_a0001.wav", "rb") as clip:
        voice = openai.audio.voices.create(name="aew", audio_sample=clip, consent="recorded with consent")
    try:
        assert voice.id.startswith("voice_") and voice.name == "aew" and voice.object == "audio.voice"
        saved = client.get(f"/v1/audio/voices/{voice.id}").json()
        assert set(saved["toolchains"]) == {"harmonyspeech", "openvoice_v1", "openvoice_v2"}
        listing = client.get("/v1/audio/voices").json()
        assert {"id": voice.id, "name": "aew"} in listing["voices"]
        assert voice.id in [entry["id"] for entry in listing["data"]]
        taken = client.post("/v1/audio/voices", data={"name": "aew"},
                            files={"audio_sample": ("a.wav", (FIXTURES / "jfk.flac").read_bytes())})
        assert taken.status_code == 409 and taken.json()["reason"] == "voice_exists"

        # OpenAI's call with {"id": ...}: raw audio back, the encoder step skipped
        raw = openai.audio.speech.with_raw_response.create(model="harmonyspeech", voice={"id": voice.id},
                                                           input="A voice from the library.", response_format="wav")
        samples, rate = soundfile.read(io.BytesIO(raw.content), dtype="float32")
        assert rate == 16_000 and samples.size > 0
        assert _steps(client, raw.headers["x-job-id"]) == ["hs-synthesizer", "hs-vocoder"]

        # the stored embedding is the one the toolchain computes from the clip itself
        fresh = client.post("/v1/embed/speaker", json={"model": "harmonyspeech",
                                                       "input_audio": b64_audio("cmu_arctic_us_aew_a0001.wav")})
        seeded = {"model": "harmonyspeech", "input": "Same voice, twice.", "generation_options": {"seed": 7}}
        from_embedding = client.post("/v1/audio/speech", json={**seeded, "input_embedding": fresh.json()["data"]})
        from_library = client.post("/v1/audio/speech", json={**seeded, "voice": "aew"})
        assert from_library.status_code == 200, from_library.text
        assert _steps(client, from_library.json()["id"]) == ["hs-synthesizer", "hs-vocoder"]
        a = soundfile.read(io.BytesIO(base64.b64decode(from_embedding.json()["data"])), dtype="float32")[0]
        b = soundfile.read(io.BytesIO(base64.b64decode(from_library.json()["data"])), dtype="float32")[0]
        assert a.shape == b.shape and np.allclose(a, b, atol=1e-4)

        # openvoice_v1 by the saved name: no VAD and no encoder step
        by_name = client.post("/v1/audio/speech", json={"model": "openvoice_v1", "voice": "aew",
                                                        "input": "Saved by name.", "output_options": {"format": "wav"}})
        assert by_name.status_code == 200, by_name.text
        assert _steps(client, by_name.json()["id"]) == ["ov1-synthesizer", "ov1-converter"]

        plain = client.post("/v1/audio/speech", json={"model": "piper", "voice": {"id": voice.id}, "input": "No."})
        assert plain.status_code == 400 and plain.json()["param"] == "voice"
    finally:
        deleted = openai.audio.voices.delete(voice.id)
    assert deleted.deleted and deleted.id == voice.id
    with pytest.raises(NotFoundError):
        openai.audio.speech.create(model="harmonyspeech", voice={"id": voice.id}, input="Gone.")
    assert client.get(f"/v1/audio/voices/{voice.id}").status_code == 404


@pytest.fixture(scope="module")
def keyed(redis_server, fleet, fleet_config):
    """An API replica with keys for two tenants, listings open, one allowed browser origin."""
    replica = Fleet(redis_server, config=fleet_config, extra_env={
        "SPEECHFLEET_API_KEYS": "alice:alice-secret,bob:bob-secret", "SPEECHFLEET_PUBLIC_LISTINGS": "true",
        "SPEECHFLEET_CORS_ORIGINS": "http://ui.example"})
    replica.start_api()
    replica.wait_ready_for("hs-encoder")
    yield replica.base_url
    replica.stop()


def test_listings_open_without_a_key_when_asked_but_nothing_else(keyed):
    assert httpx.get(f"{keyed}/v1/audio/models").status_code == 200
    assert httpx.get(f"{keyed}/v1/models").status_code == 200
    assert httpx.get(f"{keyed}/v1/audio/voices").json()["data"] == []
    assert httpx.get(f"{keyed}/v1/audio/voices", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(f"{keyed}/v1/jobs/abc").status_code == 401
    assert httpx.post(f"{keyed}/v1/audio/voices", json={"name": "x", "audio_sample": "AA=="}).status_code == 401
    allowed = httpx.get(f"{keyed}/v1/audio/models", headers={"Origin": "http://ui.example"})
    assert allowed.headers["access-control-allow-origin"] == "http://ui.example"
    other = httpx.get(f"{keyed}/v1/audio/models", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_saved_voices_belong_to_their_tenant(keyed):
    alice = {"Authorization": "Bearer alice-secret"}
    bob = {"Authorization": "Bearer bob-secret"}
    created = httpx.post(f"{keyed}/v1/audio/voices", headers=alice, timeout=180,
                         json={"name": "alice-voice", "audio_sample": b64_audio("cmu_arctic_us_axb_a0004.wav")})
    assert created.status_code == 201, created.text
    voice_id = created.json()["id"]
    try:
        assert voice_id in [v["id"] for v in httpx.get(f"{keyed}/v1/audio/voices", headers=alice).json()["data"]]
        assert httpx.get(f"{keyed}/v1/audio/voices", headers=bob).json()["data"] == []
        assert httpx.get(f"{keyed}/v1/audio/voices", headers={}).json()["data"] == []
        assert httpx.get(f"{keyed}/v1/audio/voices/{voice_id}", headers=bob).status_code == 404
        refused = httpx.post(f"{keyed}/v1/audio/speech", headers=bob, timeout=60,
                             json={"model": "harmonyspeech", "input": "Not yours.", "voice": {"id": voice_id}})
        assert refused.status_code == 404 and refused.json()["reason"] == "voice_not_found"
        spoken = httpx.post(f"{keyed}/v1/audio/speech", headers=alice, timeout=120,
                            json={"model": "harmonyspeech", "input": "Mine.", "voice": {"id": voice_id}})
        assert spoken.status_code == 200, spoken.text
        assert httpx.delete(f"{keyed}/v1/audio/voices/{voice_id}", headers=bob).status_code == 404
    finally:
        assert httpx.delete(f"{keyed}/v1/audio/voices/{voice_id}", headers=alice).status_code == 200
