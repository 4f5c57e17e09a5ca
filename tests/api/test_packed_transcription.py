"""Whisper window packing through the fleet: distinct sentences from two speakers sent at once
(through the official openai package) share windows, and each request gets back only its own
words, in order, timed inside its own audio."""

import difflib
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
import redis
import soundfile

from jobcontract.priorities import queue_keys
from speechmodels.config import queue_for
from tests.fleet import FIXTURE_TRANSCRIPTS, FIXTURES
from workers.canvas import job_ids_of_task

ARCTIC = [name for name in FIXTURE_TRANSCRIPTS if name.startswith("cmu_arctic")]


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("'em", "them")).split()


def in_order(own: list[str], got: list[str]) -> int:
    """How many of the reference's words the transcript has in the reference's order: a
    word said twice ("them ... them") or a missed one costs only itself."""
    return sum(block.size for block in difflib.SequenceMatcher(None, own, got, autojunk=False).get_matching_blocks())


def metric(client, line_start: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def windows_seen(client) -> tuple[float, float]:
    """(windows, requests placed in them) of the test Whisper model so far."""
    return (metric(client, 'speechfleet_stt_requests_per_window_count{model="whisper"}'),
            metric(client, 'speechfleet_stt_requests_per_window_sum{model="whisper"}'))


def jobs_queued(redis_url: str, model: str) -> int:
    """Jobs waiting in the model's queue: a message holds one job, or several sent together."""
    client = redis.Redis.from_url(redis_url)
    try:
        return sum(len(job_ids_of_task(json.loads(raw)["headers"]["id"]))
                   for key in queue_keys(queue_for(model)) for raw in client.lrange(key, 0, -1))
    finally:
        client.close()


def test_sentences_sent_at_once_each_get_only_their_own_words(fleet, client, paused, redis_server):
    sdk = openai.OpenAI(base_url=f"{fleet.base_url}/v1", api_key="unused", max_retries=0, timeout=120)

    def transcribe(name: str):
        with open(FIXTURES / name, "rb") as clip:
            return sdk.audio.transcriptions.create(model="whisper", file=clip, response_format="verbose_json",
                                                   timestamp_granularities=["word", "segment"])

    windows_before, placed_before = windows_seen(client)
    with ThreadPoolExecutor(len(ARCTIC)) as pool:
        with paused("whisper"):  # all six queued before the worker takes any: they arrive together
            futures = [pool.submit(transcribe, name) for name in ARCTIC]
            deadline = time.monotonic() + 30
            while jobs_queued(redis_server.url, "whisper") < len(ARCTIC):
                assert time.monotonic() < deadline, "the requests never reached the queue"
                time.sleep(0.05)
        results = [future.result() for future in futures]
    windows_after, placed_after = windows_seen(client)
    assert placed_after - placed_before > windows_after - windows_before  # some window held several requests

    for name, result in zip(ARCTIC, results):
        own = words(FIXTURE_TRANSCRIPTS[name])
        others = {w for other in ARCTIC if other != name for w in words(FIXTURE_TRANSCRIPTS[other])} - set(own)
        got = words(result.text)
        assert not [w for w in got if w in others and len(w) > 3], (name, result.text)
        assert in_order(own, got) >= len(own) // 2, (name, result.text)
        timed = result.words
        assert timed and all(0 <= w.start <= w.end <= result.duration for w in timed)
        assert all(a.start <= b.start for a, b in zip(timed, timed[1:]))
        assert all(0 <= s.start <= s.end <= result.duration for s in result.segments)
        assert result.duration == pytest.approx(soundfile.info(FIXTURES / name).duration, abs=0.01)
