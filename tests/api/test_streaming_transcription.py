"""stream=true on /v1/audio/transcriptions and /v1/audio/translations, through the official
openai package: deltas in order as the pieces (parts of one job) finish, then the done event;
a failing request gets its 4xx before the stream starts."""

from __future__ import annotations

import time

import httpx
import numpy as np
import openai
import pytest
import yaml
from openai.types.audio import TranscriptionStreamEvent, Translation

from api.transcription_stream import SAMPLE_RATE, cut_points
from tests.api.live_audio import flac, joined, wer
from tests.fleet import FIXTURE_TRANSCRIPTS, TEST_CONFIG, Fleet, fixture_audio

MODELS = ("whisper", "whisper-base")


@pytest.fixture(scope="module")
def stt_fleet(private_redis, tmp_path_factory):
    """The two Whisper models only (the shared fleet's other models are not needed here)."""
    document = yaml.safe_load(TEST_CONFIG.read_text())
    document["model_configs"] = [c for c in document["model_configs"] if c["name"] in MODELS]
    config = tmp_path_factory.mktemp("stt-config") / "config.yml"
    config.write_text(yaml.safe_dump(document))
    running = Fleet(private_redis, config=config)
    for model in MODELS:
        running.start_worker(model)
    running.start_api()
    try:
        running.wait_ready(timeout_s=240)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def sdk(stt_fleet):
    with openai.OpenAI(base_url=f"{stt_fleet.base_url}/v1", api_key="-", timeout=180, max_retries=0) as client:
        yield client


def _finished(http: httpx.Client, job_id: str, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while (job := http.get(f"/v1/jobs/{job_id}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    return job


def _events(stream) -> list:
    return list(stream)


def test_pieces_grow_from_a_short_first_one_and_end_in_the_latest_pause():
    """The first piece is short (the first delta's), each next at most twice the one before up
    to the longest; every cut is in a pause, the latest
    one of the piece's second half, so full-length pieces stay long."""
    samples, _ = joined(300)
    ends = cut_points(samples, 28.0, 5.0)
    lengths = np.diff([0, *ends]) / SAMPLE_RATE
    assert ends[-1] == len(samples) and all(a < b for a, b in zip(ends, ends[1:]))
    limits = [min(5.0 * 2 ** i, 28.0) for i in range(len(lengths))]
    assert all(length <= limit + 1e-9 for length, limit in zip(lengths, limits)), lengths
    assert lengths[0] >= 2.5 and all(length > 16 for length in lengths[3:-1]), lengths  # no clip is 12 s long
    assert all(np.sqrt(np.mean(samples[end - 400:end + 400] ** 2)) < 0.002 for end in ends[:-1])  # -54 dBFS
    assert len(cut_points(samples, 28.0)) == len(cut_points(samples, 28.0, 28.0))


def test_jfk_streams_deltas_then_done(sdk):
    stream = sdk.audio.transcriptions.create(model="whisper", file=("jfk.flac", fixture_audio("jfk.flac")),
                                             stream=True)
    events = _events(stream)
    types = [event.type for event in events]
    assert types[-1] == "transcript.text.done" and set(types[:-1]) == {"transcript.text.delta"}, types
    done = events[-1]
    assert "".join(event.delta for event in events[:-1]) == done.text
    # one word of 22 may differ: tiny.en int8's text depends on the CPU's kernels (this run's AVX-512
    # EPYC hears "asked not"; the issue asks WER <= 0.2)
    assert wer(FIXTURE_TRANSCRIPTS["jfk.flac"], done.text) <= 0.05, done.text
    assert done.usage.type == "duration" and done.usage.seconds == pytest.approx(11.0, abs=0.1)


def test_two_minute_file_streams_its_pieces_in_order(sdk, stt_fleet):
    samples, reference = joined(115)
    with httpx.Client(base_url=stt_fleet.base_url, timeout=180) as http:
        raw = sdk.audio.transcriptions.with_raw_response.create(
            model="whisper", file=("long.flac", flac(samples)), stream=True)
        job_id = raw.headers["x-job-id"]
        events = _events(raw.parse())
        deltas, done = events[:-1], events[-1]
        assert done.type == "transcript.text.done" and all(e.type == "transcript.text.delta" for e in deltas)
        assert len(deltas) >= 4, [e.delta for e in deltas]  # one per piece: several parts of one job
        assert "".join(e.delta for e in deltas) == done.text
        assert wer(reference, done.text) <= 0.2, done.text
        assert done.usage.seconds == pytest.approx(len(samples) / 16_000, abs=0.05)
        job = _finished(http, job_id)  # the stream ends with the last piece; the join step runs after it
        steps = [step["name"] for step in job["steps"]]
        assert job["status"] == "succeeded", job
        assert steps[-1] == "join" and steps[:-1] == [f"whisper[{i}]" for i in range(len(steps) - 1)], steps
        # the first piece ran once, as the job of its own whose text was the first delta; the file's
        # job reuses that run, so its result says what the stream said
        first = job["steps"][0]
        assert first["from_job"] not in (None, job_id) and first["status"] == "succeeded", first
        assert [step.get("from_job") for step in job["steps"][1:]] == [None] * (len(steps) - 1)
        # the job's own result is the whole transcript, pieces joined with their times shifted
        # (verbose_json: a streamed job's result keeps its segments, one per speech chunk: a stream
        # shows no segment times, so its chunks are decoded without timestamp tokens)
        verbose = http.get(f"/v1/jobs/{job_id}/result").json()
        assert verbose["text"] == done.text
        starts = [segment["start"] for segment in verbose["segments"]]
        # shifted onto the file: unshifted, every piece's chunks would start within its first 30 s
        assert starts == sorted(starts) and starts[-1] > 0.75 * len(samples) / 16_000, starts
        assert verbose["duration"] == pytest.approx(len(samples) / 16_000, abs=0.05)


def _streamed_translation(sdk, model: str, data: bytes) -> openai.Stream:
    """The SDK's translations.create has no ``stream``; this is the call transcriptions.create
    makes with ``stream=True``, on the translations path."""
    return sdk.post("/audio/translations", body={"model": model, "stream": True}, files=[("file", ("jfk.flac", data))],
                    options={"headers": {"Content-Type": "multipart/form-data"}}, cast_to=Translation, stream=True,
                    stream_cls=openai.Stream[TranscriptionStreamEvent])


def test_translation_streams_on_a_multilingual_model(sdk):
    events = _events(_streamed_translation(sdk, "whisper-base", fixture_audio("jfk.flac")))
    assert events[-1].type == "transcript.text.done", events
    assert "".join(event.delta for event in events[:-1]) == events[-1].text
    assert wer(FIXTURE_TRANSCRIPTS["jfk.flac"], events[-1].text) <= 0.2, events[-1].text


def test_english_only_model_refuses_to_stream_a_translation_with_a_4xx(sdk):
    with pytest.raises(openai.BadRequestError) as caught:
        _streamed_translation(sdk, "whisper", fixture_audio("jfk.flac"))
    assert caught.value.body["reason"] == "unsupported_task"


def test_bad_streamed_requests_get_their_4xx_before_any_event(sdk):
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.audio.transcriptions.create(model="whisper", file=("x.wav", b"not audio at all"), stream=True)
    assert caught.value.body["reason"] == "invalid_audio"
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.audio.transcriptions.create(model="whisper", file=("jfk.flac", fixture_audio("jfk.flac")), stream=True,
                                        response_format="srt")
    assert caught.value.body["reason"] == "unsupported_stream"
    with pytest.raises(openai.NotFoundError):
        sdk.audio.transcriptions.create(model="nope", file=("jfk.flac", fixture_audio("jfk.flac")), stream=True)
