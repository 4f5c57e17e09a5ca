"""Hostile and careless input through HTTP against the real fleet: always a 4xx in the
envelope with a reason, never a 500, a hang or a dropped connection."""

import io
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis
import soundfile

from tests.conftest import b64_audio


def test_control_characters_in_text_to_speak_are_a_400(client):
    for text in ("hello \u0000 world", "bell \u0007 here", "escape \u001b[31m red"):
        response = client.post("/v1/audio/speech", json={"model": "piper", "input": text})
        body = response.json()
        assert response.status_code == 400 and body["param"] == "input" and body["reason"], text
    fine = client.post("/v1/audio/speech", json={"model": "piper", "input": "Tabs\tand\nnew lines are fine."})
    assert fine.status_code == 200, fine.text


def test_a_lone_surrogate_anywhere_is_a_4xx_and_the_connection_lives_on(client):
    bodies = [
        ("/v1/audio/vad", '{"model": "\\ud800", "input_audio": "AAAA"}'),
        ("/v1/audio/speech", '{"model": "piper", "input": "hi \\udfff there"}'),
        ("/v1/audio/speech", '{"model": "piper", "input": "Hello there.", "voice": "\\ud83d"}'),
        ("/v1/audio/transcriptions", json.dumps({"model": "whisper", "input_audio": b64_audio("jfk.flac")})
         .replace('"model"', '"language": "\\udc00", "model"')),
    ]
    for path, raw in bodies:
        response = client.post(path, content=raw.encode(), headers={"content-type": "application/json"})
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
        assert response.json()["object"] == "error" and response.json()["reason"], response.text
    assert client.get("/health").status_code == 200  # same keep-alive connection


@pytest.mark.parametrize("url", ["http://example.com:99999/", "http://[::1", "http://a:b@example.com:abc/",
                                 "http://exa mple.com/"])
def test_malformed_callback_urls_are_a_400(client, url):
    response = client.post("/v1/audio/vad", json={"model": "silero-vad", "input_audio": b64_audio("jfk.flac"),
                                                  "callback_url": url})
    assert response.status_code == 400 and response.json()["reason"] == "invalid_callback_url", response.text


def test_a_huge_job_id_is_an_enveloped_400(fleet):
    """70,000 characters: longer than HTTP clients even send (httpx refuses), so on a raw socket."""
    import socket
    from urllib.parse import urlsplit

    address = urlsplit(fleet.base_url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as connection:
        connection.sendall(f"GET /v1/jobs/{'a' * 70_000} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    assert status == 400 and json.loads(body)["reason"] in ("invalid_job_id", "invalid_http"), reply[:300]


def _peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1]) / 1024


def test_a_high_rate_stereo_file_costs_the_worker_what_its_duration_does(fleet, client):
    """119 s of 192 kHz stereo (the test config allows 120 s) decodes block by block to 16 kHz
    mono: the worker's peak memory grows by far less than the file's float32 size (183 MB)."""
    buffer = io.BytesIO()
    with soundfile.SoundFile(buffer, "w", 192_000, 2, format="FLAC", subtype="PCM_16") as flac:
        for _ in range(119):
            flac.write(np.zeros((192_000, 2), dtype=np.int16))
    import base64

    pid = fleet.workers["silero-vad"].pid
    before = _peak_rss_mb(pid)
    response = client.post("/v1/audio/vad", json={"model": "silero-vad",
                                                  "input_audio": base64.b64encode(buffer.getvalue()).decode()})
    assert response.status_code == 200, response.text
    growth = _peak_rss_mb(pid) - before
    print(f"VAD worker peak RSS grew by {growth:.1f} MB for {len(buffer.getvalue())} bytes of 192 kHz stereo FLAC")
    assert growth < 100


def test_a_stream_that_fails_midway_is_an_error_to_the_client(fleet):
    """The last sentence has nothing to pronounce: by the time a worker reaches it the first
    ones are sent, so the body is aborted rather than ended, and an HTTP client sees a broken
    stream, not a short file."""
    good = " ".join(f"Sentence number {n} of this text is perfectly fine to say." for n in range(1, 7))
    text = f"{good} ________________________"
    with httpx.Client(base_url=fleet.base_url, timeout=60) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            with http.stream("POST", "/v1/audio/speech", json={"model": "piper", "input": text,
                                                                "stream_format": "audio", "response_format": "pcm"}) \
                    as response:
                assert response.status_code == 200
                for _ in response.iter_bytes():
                    pass


def test_a_burst_of_long_speech_jobs_leaves_nothing_behind(fleet):
    """Sentence parts are dropped once the job has joined them, and an answered request's audio
    is not kept for the job's TTL: Redis's memory comes back after the burst."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.api.test_speech import PARAGRAPH

    server = redis.Redis.from_url(fleet.redis.url)
    start_mb = server.info("memory")["used_memory"] / 2**20
    text = (PARAGRAPH * 2)[:700]

    def speak(_) -> httpx.Response:
        with httpx.Client(base_url=fleet.base_url, timeout=400) as http:
            return http.post("/v1/audio/speech", json={"model": "piper", "input": text, "response_format": "wav"},
                             headers={"Prefer": "wait=360"})

    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(speak, range(20)))
    assert all(response.status_code == 200 for response in responses), [r.status_code for r in responses]
    peak_mb = server.info("memory")["used_memory_peak"] / 2**20
    ids = [response.headers["x-job-id"] for response in responses]
    leftovers = [key for job_id in ids for pattern in (f"speechfleet:job-step:{job_id}:*", f"speechfleet:job-output:{job_id}")
                 for key in server.scan_iter(pattern)]
    assert leftovers == []
    end_mb = server.info("memory")["used_memory"] / 2**20
    print(f"Redis used_memory: {start_mb:.1f} MB before, peak {peak_mb:.1f} MB, {end_mb:.1f} MB after 20 speech "
          f"requests of {len(text)} characters ({sum(len(r.content) for r in responses) / 2**20:.1f} MB of audio)")
    assert end_mb < start_mb + 50
