"""Text-to-speech through the official OpenAI SDK and HSE's JSON dialect, on the real Piper
voice; long text as a chord of sentences across workers; streaming."""

import base64
import io
import json
import time

import httpx
import jiwer
import numpy as np
import openai
import pytest
import redis
import soundfile

from speechmodels import audio

SENTENCE = "The quick brown fox jumps over the lazy dog."
PARAGRAPH = ("Speech synthesis turns written text into spoken audio. Each sentence here is synthesised on its own, "
             "possibly by a different worker. The results are joined with short pauses, and the seams are faded "
             "so that nothing clicks. A listener should hear one continuous reading. Numbers like 42 and dates "
             "like March third are read aloud. Questions sound different, don't they? Exclamations too! ")
LONG_TEXT = (PARAGRAPH * 6)[:2000]
RATE = 22_050


@pytest.fixture
def sdk(fleet):
    return openai.OpenAI(base_url=f"{fleet.base_url}/v1", api_key="unused", max_retries=0, timeout=180)


@pytest.fixture(scope="module")
def second_piper_worker(fleet):
    """A second worker for the piper model, so a long text's sentences can be shared."""
    process = fleet.start_worker("piper", name="piper-2")
    deadline = time.monotonic() + 120
    client = redis.Redis.from_url(fleet.redis.url)
    while client.zcard("speechfleet:consumers:piper") < 2:
        assert time.monotonic() < deadline and process.poll() is None, "second piper worker did not start"
        time.sleep(0.3)
    yield
    process.terminate()
    process.wait(30)
    del fleet.workers["piper-2"]


def _words(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())


@pytest.mark.parametrize("response_format", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
def test_openai_sdk_gets_playable_audio_in_every_format(sdk, response_format):
    response = sdk.audio.speech.create(model="piper", voice="alloy", input=SENTENCE, response_format=response_format)
    data = response.content
    if response_format == "pcm":  # raw 16-bit mono at the model's rate, as OpenAI sends it
        samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768
        seconds = samples.size / RATE
    else:
        seconds = audio.probe(data).duration_s
        samples = audio.decode(data, 16_000)
    assert 1.5 < seconds < 5.0, response_format
    assert np.sqrt(np.mean(samples ** 2)) > 0.02  # speech, not silence


def test_an_openai_call_with_a_filter_stays_an_openai_call(sdk, client):
    """post_generation_filters through extra_body: OpenAI's answer (MP3 bytes, stock voice
    accepted), with the filter as one more step of the job."""
    raw = sdk.audio.speech.with_raw_response.create(
        model="piper", voice="alloy", input=SENTENCE, response_format="mp3",
        extra_body={"post_generation_filters": [{"model": "rnnoise"}]})
    assert raw.headers["content-type"] == "audio/mpeg"
    data = raw.content
    assert audio.probe(data).format.lower() == "mp3" and 1.5 < audio.probe(data).duration_s < 5.0
    job = client.get(f"/v1/jobs/{raw.headers['x-job-id']}").json()
    assert [step["name"] for step in job["steps"]] == ["piper[0]", "join", "rnnoise"]
    assert job["steps"][-1]["queue"] == "model.rnnoise" and job["status"] == "succeeded"


def test_one_sentence_is_one_step_that_fades_its_edges_as_a_join_would(client):
    """A single unstreamed sentence runs as one task (no chord, no join task), and its audio is
    what the join of one part makes: DC removed, faded to exact zeros at both ends."""
    response = client.post("/v1/audio/speech", json={"model": "piper", "input": SENTENCE, "response_format": "wav"})
    assert response.status_code == 200
    job = client.get(f"/v1/jobs/{response.headers['x-job-id']}").json()
    assert [step["name"] for step in job["steps"]] == ["piper[0]"] and job["status"] == "succeeded"
    samples, rate = soundfile.read(io.BytesIO(response.content), dtype="float32")
    assert rate == RATE and 1.5 < samples.size / rate < 5.0
    assert samples[0] == 0.0 and samples[-1] == 0.0 and np.sqrt(np.mean(samples ** 2)) > 0.02


def test_round_trip_through_the_transcription_model_recovers_the_words(sdk):
    speech = sdk.audio.speech.create(model="piper", voice="joe", input=SENTENCE, response_format="wav").content
    text = sdk.audio.transcriptions.create(model="whisper", file=("speech.wav", speech), response_format="text")
    assert jiwer.wer(_words(SENTENCE), _words(text)) <= 0.2, text


def test_hse_request_gets_the_envelope_with_the_asked_format_and_rate(client):
    response = client.post("/v1/audio/speech", json={
        "model": "piper", "input": SENTENCE, "voice": "joe", "mode": "single_speaker_tts", "language": "en",
        "generation_options": {"speed": 1.0}, "output_options": {"format": "flac", "sample_rate": 16_000}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"id", "model", "created", "data"} and body["model"] == "piper"
    info = soundfile.info(io.BytesIO(base64.b64decode(body["data"])))
    assert info.format == "FLAC" and info.samplerate == 16_000 and 1.5 < info.duration < 5.0


def test_speed_is_applied(client):
    def seconds(speed: float) -> float:
        data = client.post("/v1/audio/speech", json={"model": "piper", "input": SENTENCE, "voice": "alloy",
                                                     "response_format": "wav", "speed": speed}).content
        return audio.probe(data).duration_s

    assert seconds(2.0) < 0.7 * seconds(1.0)


def test_speech_models_list_languages_and_voices(client):
    cards = client.get("/v1/audio/speech/models").json()["data"]
    piper = next(card for card in cards if card["id"] == "piper")
    assert piper["languages"] == [{"language": "en_US", "voices": [{"voice": "joe", "styles": []}]}]
    assert all("tts" in card["capabilities"] for card in cards)


def _zero_runs(samples: np.ndarray, min_length: int) -> list[tuple[int, int]]:
    """(start, end) of runs of exact zeros at least ``min_length`` long: the joins' pauses."""
    zero = np.concatenate([[False], samples == 0, [False]])
    edges = np.flatnonzero(np.diff(zero.astype(np.int8)))
    return [(start, end) for start, end in zip(edges[::2], edges[1::2]) if end - start >= min_length]


def test_a_long_text_is_a_chord_of_sentences_shared_by_workers(client, second_piper_worker):
    response = client.post("/v1/audio/speech", json={"model": "piper", "input": LONG_TEXT, "voice": "alloy",
                                                     "response_format": "wav"})
    assert response.status_code == 200, response.text
    job = client.get(f"/v1/jobs/{response.headers['x-job-id']}").json()
    *sentences, join = job["steps"]
    assert len(sentences) >= 15 and join["name"] == "join"
    assert [step["name"] for step in sentences] == [f"piper[{i}]" for i in range(len(sentences))]
    assert all(step["status"] == "succeeded" for step in job["steps"])
    assert join["started_at"] >= max(step["finished_at"] for step in sentences)
    assert len({step["worker"] for step in sentences}) == 2  # both workers took sentences

    samples, rate = soundfile.read(io.BytesIO(response.content), dtype="int16")
    assert rate == RATE and 100 < samples.size / rate < 240
    pauses = _zero_runs(samples, int(0.2 * rate))
    assert len(pauses) >= len(sentences) - 1
    # no clicks: around every seam the signal moves by small steps (faded to zero), while
    # inside speech the same measure is far larger
    seam_steps = [np.abs(np.diff(samples[max(0, s - 64):e + 64].astype(np.int32))).max() for s, e in pauses]
    speech_steps = np.abs(np.diff(samples.astype(np.int32))).max()
    assert max(seam_steps) < 0.05 * 32768 < speech_steps


def test_streaming_sse_delivers_audio_before_the_text_is_done(client):
    deltas, done, status_at_first = [], None, None
    with client.stream("POST", "/v1/audio/speech", json={"model": "piper", "input": LONG_TEXT[:1200],
                                                         "voice": "alloy", "response_format": "pcm",
                                                         "stream_format": "sse"}) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        job_id = response.headers["x-job-id"]
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[len("data: "):])
            if event["type"] == "speech.audio.delta":
                if not deltas:
                    status_at_first = client.get(f"/v1/jobs/{job_id}").json()
                deltas.append(base64.b64decode(event["audio"]))
            elif event["type"] == "speech.audio.done":
                done = event
    assert done is not None and done["sentences"] == len(deltas) >= 8
    # the first sentence was out while the later ones were still being synthesised
    assert status_at_first["status"] == "running"
    assert len(status_at_first["steps"]) < len(deltas) + 1
    pcm = np.frombuffer(b"".join(deltas), dtype="<i2")
    assert pcm.size / RATE == pytest.approx(done["audio_seconds"] + 0.25 * (len(deltas) - 1), rel=0.01)


def test_streaming_audio_is_a_playable_wav(client):
    with client.stream("POST", "/v1/audio/speech", json={"model": "piper", "input": PARAGRAPH, "voice": "alloy",
                                                         "response_format": "wav", "stream_format": "audio"}) as response:
        assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
        chunks = list(response.iter_bytes())
    samples, rate = soundfile.read(io.BytesIO(b"".join(chunks)), dtype="float32")
    assert rate == RATE and samples.size / rate > 10


@pytest.mark.parametrize("body, param", [
    ({"voice": "nobody"}, "voice"),
    ({"input": "   "}, "input"),
    ({"response_format": "ogg"}, "response_format"),
    ({"speed": 5.0}, "speed"),
    ({"speed": 0.1}, "speed"),
    ({"input": "x" * 4097}, "input"),
    ({"model": "silero-vad"}, "model"),
    ({"mode": "voice_cloning", "input_audio": "AAAA"}, "mode"),
    ({"output_options": {"sample_rate": 4000}}, "output_options.sample_rate"),
    ({"response_format": "opus", "stream_format": "audio"}, "response_format"),
])
def test_bad_input_is_400_in_the_envelope(client, body, param):
    response = client.post("/v1/audio/speech", json={"model": "piper", "input": SENTENCE, **body})
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["object"] == "error" and error["code"] == 400 and error["param"] == param, error


def test_unknown_model_is_404(client):
    response = client.post("/v1/audio/speech", json={"model": "nope", "input": SENTENCE})
    assert response.status_code == 404 and response.json()["param"] == "model"


def test_async_speech_job_result_keeps_the_requested_dialect(client):
    accepted = client.post("/v1/audio/speech", headers={"Prefer": "respond-async"},
                           json={"model": "piper", "input": SENTENCE, "response_format": "mp3"})
    assert accepted.status_code == 202
    job_id = accepted.json()["id"]
    deadline = time.monotonic() + 60
    while (job := client.get(f"/v1/jobs/{job_id}").json())["status"] != "succeeded":
        assert job["status"] in ("queued", "running") and time.monotonic() < deadline, job
        time.sleep(0.1)
    result = client.get(f"/v1/jobs/{job_id}/result")
    assert result.headers["content-type"] == "audio/mpeg" and audio.probe(result.content).duration_s > 1.5


def test_no_result_channel_subscriptions_are_left_behind(fleet, client):
    client.post("/v1/audio/speech", json={"model": "piper", "input": PARAGRAPH, "voice": "alloy"})
    channels = redis.Redis.from_url(fleet.redis.url).pubsub_channels("celery-task-meta-*")
    assert channels == []


def test_an_unready_model_answers_fast(client):
    started = time.monotonic()
    with httpx.Client(base_url=str(client.base_url), timeout=5) as quick:
        response = quick.get("/v1/audio/speech/models")
    assert response.status_code == 200 and time.monotonic() - started < 2
