"""Bad input gets a clear 4xx in HSE's error envelope, never a hang or a 500."""

import base64
import io

import numpy as np
import pytest
import soundfile

from tests.conftest import b64_audio


def assert_envelope(response, status: int, code: str | None = None):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["object"] == "error" and body["message"] and body["type"].endswith("Error")
    assert set(body) >= {"object", "message", "type", "param", "code"}
    assert body["code"] == status  # HSE: the envelope's code is the HTTP status
    if code:
        assert body["reason"] == code, body


def wav_b64(samples: np.ndarray, rate: int = 16_000, fmt: str = "WAV") -> str:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format=fmt)
    return base64.b64encode(buffer.getvalue()).decode()


def test_unknown_model_is_404(client):
    response = client.post("/v1/audio/vad", json={"model": "whisper-9000", "input_audio": b64_audio("jfk.flac")})
    assert_envelope(response, 404, "model_not_found")
    assert response.json()["param"] == "model"


@pytest.mark.parametrize("payload, code", [
    ("bm90IGF1ZGlvIGF0IGFsbCwganVzdCB0ZXh0", "invalid_audio"),  # base64 of plain text
    ("%%% not base64 %%%", "invalid_base64"),
    ("", "empty_audio"),
])
def test_undecodable_or_empty_audio_is_400(client, payload, code):
    for path, model in (("/v1/audio/vad", "silero-vad"), ("/v1/embed/speaker", "harmonyspeech-encoder")):
        assert_envelope(client.post(path, json={"model": model, "input_audio": payload}), 400, code)


def test_wav_with_no_samples_is_400(client):
    response = client.post("/v1/audio/vad", json={"model": "silero-vad", "input_audio": wav_b64(np.zeros(0))})
    assert_envelope(response, 400, "empty_audio")


def test_audio_longer_than_the_limit_is_413(client):
    # 130 s of silence: tiny as FLAC, but over the test limit of 120 s
    response = client.post("/v1/audio/vad", json={"model": "silero-vad",
                                                  "input_audio": wav_b64(np.zeros(130 * 8000), 8000, "FLAC")})
    assert_envelope(response, 413, "audio_too_long")


def test_body_over_the_limit_is_413(client):
    big = base64.b64encode(b"\0" * (5 * 1024 * 1024)).decode()
    assert_envelope(client.post("/v1/audio/vad", json={"model": "silero-vad", "input_audio": big}), 413, "request_too_large")

    def chunks():  # no Content-Length: the streamed body is counted
        for _ in range(6):
            yield b"x" * (1024 * 1024)

    streamed = client.post("/v1/audio/vad", content=chunks(), headers={"content-type": "application/json"})
    assert_envelope(streamed, 413, "request_too_large")


@pytest.mark.parametrize("body", [
    {"input_audio": "AAAA"},  # no model
    {"model": "silero-vad"},  # no audio
    {"model": "silero-vad", "input_audio": "AAAA", "threshold": 1.5},
    {"model": "silero-vad", "input_audio": "AAAA", "min_speech_duration_ms": -1},
    {"model": 12, "input_audio": []},
])
def test_invalid_fields_are_400_naming_the_field(client, body):
    response = client.post("/v1/audio/vad", json=body)
    assert_envelope(response, 400, "invalid_request")
    assert response.json()["param"]


def test_malformed_json_and_wrong_method(client):
    assert_envelope(client.post("/v1/audio/vad", content=b"{not json", headers={"content-type": "application/json"}), 400)
    assert_envelope(client.get("/v1/audio/vad"), 405)
    assert_envelope(client.get("/v1/nowhere"), 404)
