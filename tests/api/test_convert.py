"""Audio conversion: RNNoise on POST /v1/audio/convert, and as a post-generation filter of
text-to-speech (one more step of the same job, on the denoiser's own queue)."""

import base64
import io

import numpy as np
import pytest
import soundfile

from speechmodels import audio
from speechmodels.encoding import encode_audio
from tests.conftest import b64_audio
from tests.fleet import fixture_audio


def noisy_clip(snr_db: float) -> tuple[np.ndarray, np.ndarray]:
    clean = audio.decode(fixture_audio("cmu_arctic_us_aew_a0003.wav"), 16_000)
    noise = np.resize(audio.decode(fixture_audio("noise_exercise_bike.wav"), 16_000), clean.size)
    gain = np.sqrt(np.mean(clean ** 2) / np.mean(noise ** 2) / 10 ** (snr_db / 10))
    return clean, clean + gain * noise


def snr(clean: np.ndarray, estimate: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(clean ** 2) / np.sum((estimate - clean) ** 2)))


def test_denoise_returns_cleaner_audio_in_the_asked_format(client):
    clean, noisy = noisy_clip(0)
    response = client.post("/v1/audio/convert", json={
        "model": "rnnoise", "source_audio": base64.b64encode(encode_audio(noisy, 16_000, "wav")).decode(),
        "output_options": {"format": "flac", "sample_rate": 16_000}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"id", "model", "created", "data"} and body["model"] == "rnnoise"
    data = base64.b64decode(body["data"])
    denoised, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    assert soundfile.info(io.BytesIO(data)).format == "FLAC" and rate == 16_000
    assert snr(clean, denoised[: clean.size]) > snr(clean, noisy) + 3


def test_output_rate_and_mp3(client):
    response = client.post("/v1/audio/convert", json={"model": "rnnoise", "source_audio": b64_audio("jfk.flac"),
                                                      "output_options": {"format": "mp3", "sample_rate": 24_000}})
    assert response.status_code == 200, response.text
    info = audio.probe(base64.b64decode(response.json()["data"]))
    assert info.sample_rate == 24_000 and info.duration_s == pytest.approx(11.0, abs=0.2)


def test_a_speech_job_with_a_denoise_filter_shows_both_steps(client):
    response = client.post("/v1/audio/speech", json={
        "model": "piper", "input": "The filter runs after the voice. It is one more step of the job.",
        "voice": "joe", "output_options": {"format": "wav"}, "post_generation_filters": [{"model": "rnnoise"}]})
    assert response.status_code == 200, response.text
    body = response.json()
    job = client.get(f"/v1/jobs/{body['id']}").json()
    names = [step["name"] for step in job["steps"]]
    assert names == ["piper[0]", "piper[1]", "join", "rnnoise"]
    assert job["steps"][-1]["queue"] == "model.rnnoise" and job["steps"][-1]["status"] == "succeeded"
    assert job["steps"][-1]["started_at"] >= job["steps"][-2]["finished_at"]
    samples, rate = soundfile.read(io.BytesIO(base64.b64decode(body["data"])), dtype="float32")
    assert rate == 22_050 and samples.size / rate > 3 and np.sqrt(np.mean(samples ** 2)) > 0.01


@pytest.mark.parametrize("body, status, param", [
    ({"model": "nope"}, 404, "model"),
    ({"model": "piper"}, 400, "model"),
    ({"source_audio": "not base64!"}, 400, "source_audio"),
    ({"source_audio": base64.b64encode(b"not audio at all").decode()}, 400, "source_audio"),
    ({"output_options": {"format": "ogg"}}, 400, "output_options.format"),
    ({"post_generation_filters": [{"model": "silero-vad"}]}, 400, "post_generation_filters.0.model"),
])
def test_bad_input_is_4xx_in_the_envelope(client, body, status, param):
    request = {"model": "rnnoise", "source_audio": b64_audio("cmu_arctic_us_axb_a0005.wav"), **body}
    response = client.post("/v1/audio/convert", json=request)
    assert response.status_code == status, response.text
    assert response.json()["param"] == param and response.json()["code"] == status


def test_a_speech_filter_must_be_an_audio_conversion_model(client):
    response = client.post("/v1/audio/speech", json={"model": "piper", "input": "Hi there, friend.", "voice": "joe",
                                                     "post_generation_filters": [{"model": "whisper"}]})
    assert response.status_code == 400 and response.json()["param"] == "post_generation_filters.0.model"


def test_the_voicefixer_toolchain_runs_each_step_on_its_own_queue(client):
    source = fixture_audio("cmu_arctic_us_axb_a0004.wav")
    response = client.post("/v1/audio/convert", json={"model": "voicefixer",
                                                      "source_audio": base64.b64encode(source).decode()})
    assert response.status_code == 200, response.text
    body = response.json()
    job = client.get(f"/v1/jobs/{body['id']}").json()
    assert job["model"] == "voicefixer"
    assert [(step["name"], step["queue"]) for step in job["steps"]] == [
        ("vf-restorer", "model.vf-restorer"), ("vf-vocoder", "model.vf-vocoder")]
    assert job["steps"][1]["started_at"] >= job["steps"][0]["finished_at"]
    samples, rate = soundfile.read(io.BytesIO(base64.b64decode(body["data"])), dtype="float32")
    assert rate == 44_100  # VoiceFixer's own rate by default
    assert samples.size == pytest.approx(audio.probe(source).duration_s * 44_100, abs=2)


def test_voicefixer_honours_output_options_and_serves_as_a_speech_filter(client):
    response = client.post("/v1/audio/convert", json={"model": "voicefixer", "source_audio": b64_audio("jfk.flac"),
                                                      "output_options": {"format": "mp3", "sample_rate": 16_000}})
    assert response.status_code == 200, response.text
    assert audio.probe(base64.b64decode(response.json()["data"])).sample_rate == 16_000
    # no HSE-only field: an OpenAI-style call, answered with MP3 bytes, filters or not
    speech = client.post("/v1/audio/speech", json={"model": "piper", "input": "Restore me, please.", "voice": "joe",
                                                   "post_generation_filters": [{"model": "voicefixer"}]})
    assert speech.status_code == 200, speech.text
    assert speech.headers["content-type"] == "audio/mpeg" and audio.probe(speech.content).duration_s > 0.5
    steps = client.get(f"/v1/jobs/{speech.headers['x-job-id']}").json()["steps"]
    assert [step["name"] for step in steps] == ["piper[0]", "join", "vf-restorer", "vf-vocoder"]


def test_toolchains_are_listed_with_their_steps(client):
    cards = client.get("/v1/audio/convert/models").json()["data"]
    assert {card["id"]: card["object"] for card in cards} == {"rnnoise": "model", "voicefixer": "toolchain"}
    assert next(card for card in cards if card["id"] == "voicefixer")["steps"] == ["vf-restorer", "vf-vocoder"]
