"""Recovery driven by worker liveness, at DEFAULT settings (no recovery timing shortened):
a SIGKILLed worker's messages run elsewhere within seconds, a SIGTERMed one hands back what
it had not started, a chaos soak loses nothing and runs nothing twice, and a job longer than
the visibility timeout runs once.

These tests run a fleet of their own (own Redis, API, three workers on one VAD model, the
webhook worker, a Whisper worker), so that only the workers they kill hold its messages."""

from __future__ import annotations

import io
import json
import random
import re
import socket
import threading
import time
from collections import Counter

import httpx
import numpy as np
import pytest
import redis
import soundfile
from celery import Celery

from jobcontract.keys import CLAIMS_KEY, job_key, step_field
from jobcontract.settings import FleetSettings
from speechfleet.redis_server import EmbeddedRedis
from speechmodels.audio import decode
from tests.conftest import b64_audio
from tests.fleet import TEST_ENV, Fleet, fixture_audio
from tests.workers.test_webhooks import Receiver
from workers.claims import UNACKED_KEY

ASYNC = {"Prefer": "respond-async"}
MODEL = "vad-aux"
WORKERS = [f"{MODEL}-{n}" for n in range(3)]
DEFAULTS = FleetSettings.model_fields
assert "SPEECHFLEET_VISIBILITY_TIMEOUT_S" not in TEST_ENV  # defaults, as in production
VISIBILITY_TIMEOUT_S = DEFAULTS["visibility_timeout_s"].default
HEARTBEAT_TTL_S = DEFAULTS["heartbeat_ttl_s"].default


@pytest.fixture(scope="module")
def own_fleet():
    with EmbeddedRedis() as server:
        # a 20-minute recording for the long job (bounds, not recovery timings): Whisper base
        # takes about a minute for it here, twice the visibility timeout
        running = Fleet(server, extra_env={"SPEECHFLEET_MAX_AUDIO_SECONDS": "1500",
                                           "SPEECHFLEET_MAX_BODY_BYTES": str(64 * 1024 * 1024)})
        for name in WORKERS[:2]:
            running.start_worker(MODEL, name=name)
        running.start_webhook_worker()
        running.start_api()
        try:
            wait_consumers(running, 2)
            running.client = redis.Redis.from_url(server.url, decode_responses=True)
            running.control = Celery("control", broker=server.url)
            yield running
        finally:
            running.stop()


def worker_id(process) -> str:
    return f"{MODEL}@{socket.gethostname()}.{process.pid}"


def step(client, job_id: str, index: int = 0) -> dict:
    raw = client.hget(job_key(job_id), step_field(index))
    return json.loads(raw) if raw else {}


def claimed_jobs(client, holder: str) -> set[str]:
    tags = [tag for tag, who in client.hgetall(CLAIMS_KEY).items() if who == holder]
    jobs = set()
    for raw in client.hmget(UNACKED_KEY, tags) if tags else []:
        if raw:
            jobs.add(json.loads(raw)[0]["headers"]["id"])
    return jobs


def submit(http, count: int, audio: str, **fields) -> list[str]:
    ids = []
    for _ in range(count):
        response = http.post("/v1/audio/vad", headers=ASYNC, json={"model": MODEL, "input_audio": audio, **fields})
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    return ids


def wait_succeeded(client, ids, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        statuses = dict(zip(ids, (client.hget(job_key(i), "status") for i in ids)))
        if all(s == "succeeded" for s in statuses.values()):
            return
        bad = {i: s for i, s in statuses.items() if s not in ("queued", "running", "succeeded")}
        assert not bad, {i: client.hget(job_key(i), "error") for i in bad}
        assert time.monotonic() < deadline, Counter(statuses.values())
        time.sleep(0.2)


def wait_consumers(fleet, count: int) -> None:
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(f"{fleet.base_url}/ready", timeout=5).json()["models"].get(MODEL, 0) >= count:
                return
        except httpx.HTTPError:
            pass  # the API is still starting
        assert time.monotonic() < deadline, {n: fleet.log_tail(n) for n in fleet.workers}
        time.sleep(0.3)


def step_runs(fleet, names) -> Counter:
    """Executions that ran to success, per (job, step), from every worker's log (all its lives)."""
    runs = Counter()
    for name in names:
        path = fleet.log_dir / f"{name}.log"
        if path.exists():
            for job, index in re.findall(r"step ran: job (\S+) step (\d+)", path.read_text(errors="replace")):
                runs[(job, int(index))] += 1
    return runs


def test_sigkill_mid_batch_under_load_resumes_within_seconds(own_fleet):
    fleet, client = own_fleet, own_fleet.client
    victim = fleet.workers[WORKERS[1]]
    victim_id = worker_id(victim)
    noise = b64_audio("noise_exercise_bike.wav")  # one minute: batches run long enough to be caught
    with httpx.Client(base_url=fleet.base_url, timeout=60) as http:
        ids = submit(http, 40, noise)
        deadline = time.monotonic() + 60
        while not any(step(client, i).get("worker") == victim_id and step(client, i).get("status") == "running"
                      for i in ids):
            assert time.monotonic() < deadline, "the victim never ran a batch"
            time.sleep(0.02)
        held = claimed_jobs(client, victim_id)
        killed_at = time.time()
        fleet.kill_worker(WORKERS[1])
        # what the victim had started (the rest of what it held was only reserved behind it)
        running = {i for i in held if step(client, i).get("worker") == victim_id
                   and step(client, i).get("status") == "running"}
    try:
        check_sigkill_recovery(client, ids, held, running, victim_id, killed_at)
    finally:
        fleet.start_worker(MODEL, name=WORKERS[1])


def check_sigkill_recovery(client, ids, held, running, victim_id, killed_at) -> None:
    assert held, "the kill caught nothing in the victim's hands"
    wait_succeeded(client, ids, timeout_s=120)
    moved = {i: step(client, i) for i in held if step(client, i)["worker"] != victim_id}
    assert moved, "every message the victim held had finished before the kill"
    restarted = {i: s["started_at"] - killed_at for i, s in moved.items()}
    finished = {i: s["finished_at"] - killed_at for i, s in moved.items()}
    last = max(finished, key=finished.get)
    print(f"\nSIGKILL with {len(held)} messages held ({len(moved)} run again elsewhere): restarted "
          f"{min(restarted.values()):.1f}-{max(restarted.values()):.1f}s after the kill; the last finished "
          f"{finished[last]:.1f}s after it (its own run {finished[last] - restarted[last]:.1f}s); "
          f"heartbeat TTL {HEARTBEAT_TTL_S:g}s, visibility timeout {VISIBILITY_TIMEOUT_S}s")
    # within 15 s of the kill plus its own run time: each started again within 15 s
    assert max(restarted.values()) <= 15, restarted
    # the batch the kill cut short ran again: a second attempt; reserved ones ran once, elsewhere
    assert all(int(client.hget(job_key(i), "attempts")) >= 2 for i in running & set(moved)), \
        {i: client.hget(job_key(i), "attempts") for i in running & set(moved)}


def test_sigterm_hands_reservations_to_the_other_worker_at_once(own_fleet):
    fleet, client = own_fleet, own_fleet.client
    wait_consumers(fleet, 2)
    survivor_id, victim_id = worker_id(fleet.workers[WORKERS[0]]), worker_id(fleet.workers[WORKERS[1]])
    queue = f"model.{MODEL}"
    control = fleet.control
    # the survivor pauses, so that the victim takes a full prefetch: a batch running, the rest reserved
    assert control.control.cancel_consumer(queue, destination=[survivor_id], reply=True, timeout=5)
    noise = b64_audio("noise_exercise_bike.wav")
    with httpx.Client(base_url=fleet.base_url, timeout=60) as http:
        ids = submit(http, 12, noise)
        deadline = time.monotonic() + 60
        while len(claimed_jobs(client, victim_id)) < 8 or not any(
                step(client, i).get("status") == "running" for i in ids):
            assert time.monotonic() < deadline, claimed_jobs(client, victim_id)
            time.sleep(0.02)
    assert control.control.add_consumer(queue, destination=[survivor_id], reply=True, timeout=5)
    held = claimed_jobs(client, victim_id)
    terminated_at = time.time()
    fleet.workers[WORKERS[1]].terminate()
    try:
        wait_succeeded(client, ids, timeout_s=120)
        assert fleet.workers[WORKERS[1]].wait(60) == 0  # exited by itself, within its grace
        final = {i: step(client, i) for i in held}
        handed = {i: s["started_at"] - terminated_at for i, s in final.items() if s["worker"] == survivor_id}
        finished_there = [i for i, s in final.items() if s["worker"] == victim_id]
        print(f"\nSIGTERM with {len(held)} messages held: {len(finished_there)} finished by the stopping worker, "
              f"{len(handed)} handed back and started on the other "
              f"{min(handed.values(), default=0):.2f}-{max(handed.values(), default=0):.2f}s after the signal")
        assert handed, "nothing was reserved behind the batch in flight"
        assert max(handed.values()) <= 2, handed
        # the batch in flight ran to its end there, once: the stop did not kill it
        assert all(client.hget(job_key(i), "attempts") == "1" for i in finished_there)
    finally:  # the next test needs both workers, whatever this one found
        if fleet.workers[WORKERS[1]].poll() is None:
            fleet.kill_worker(WORKERS[1])
        fleet.start_worker(MODEL, name=WORKERS[1])


def long_recording(seconds: float) -> str:
    """Speech fixtures back to back, `seconds` long, as base64 FLAC."""
    import base64

    names = ["jfk.flac", *(f"cmu_arctic_us_{s}.wav" for s in
                           ("aew_a0001", "aew_a0002", "aew_a0003", "axb_a0004", "axb_a0005", "axb_a0006"))]
    clips = [decode(fixture_audio(name), 16_000).astype(np.float32) for name in names]
    pieces, total = [], 0
    while total < seconds * 16_000:
        clip = clips[len(pieces) % len(clips)]
        pieces += [clip, np.zeros(8000, np.float32)]
        total += clip.size + 8000
    buffer = io.BytesIO()
    soundfile.write(buffer, np.concatenate(pieces), 16_000, format="FLAC")
    return base64.b64encode(buffer.getvalue()).decode()


def test_chaos_soak_loses_nothing_and_runs_nothing_twice(own_fleet):
    """For two minutes, a random one of three workers is SIGKILLed every 10 s and started
    again, under steady load with a webhook per job; meanwhile one transcription runs longer
    than the visibility timeout on a worker nobody kills."""
    fleet, client = own_fleet, own_fleet.client
    fleet.start_worker(MODEL, name=WORKERS[2])
    fleet.start_worker("whisper-base")
    wait_consumers(fleet, 3)
    fleet.wait_ready_for("whisper-base", timeout_s=180)
    receiver = Receiver()
    speech = b64_audio("jfk.flac")
    ids: list[str] = []
    stop = threading.Event()
    soak_s, kill_every_s = 120, 10

    def load():
        with httpx.Client(base_url=fleet.base_url, timeout=30) as http:
            while not stop.wait(0.25):  # ~4 jobs a second
                response = http.post("/v1/audio/vad", headers=ASYNC,
                                     json={"model": MODEL, "input_audio": speech, "callback_url": receiver.url})
                assert response.status_code == 202, response.text
                ids.append(response.json()["id"])

    with httpx.Client(base_url=fleet.base_url, timeout=60) as http:
        long = http.post("/v1/audio/transcriptions", headers=ASYNC,
                         json={"model": "whisper-base", "input_audio": long_recording(1200)})
        assert long.status_code == 202, long.text
        long_id = long.json()["id"]
    loader = threading.Thread(target=load, daemon=True)
    started = time.monotonic()
    loader.start()
    kills = 0
    rng = random.Random(13)
    try:
        while time.monotonic() - started < soak_s:
            time.sleep(kill_every_s)
            name = rng.choice(WORKERS)
            fleet.kill_worker(name)
            fleet.start_worker(MODEL, name=name)
            kills += 1
    finally:
        stop.set()
        loader.join(30)
    loaded_s = time.monotonic() - started
    wait_succeeded(client, ids, timeout_s=180)
    drained_s = time.monotonic() - started
    runs = step_runs(fleet, WORKERS)
    twice = {key: n for key, n in runs.items() if n > 1}
    deliveries = Counter(d["headers"]["webhook-id"] for d in receiver.deliveries)
    deadline = time.monotonic() + 60
    while len(deliveries) < len(ids) and time.monotonic() < deadline:
        time.sleep(0.5)
        deliveries = Counter(d["headers"]["webhook-id"] for d in receiver.deliveries)
    receiver.server.shutdown()
    print(f"\nchaos soak: {len(ids)} jobs in {loaded_s:.0f}s with {kills} SIGKILLs, all done after "
          f"{drained_s:.0f}s; lost {sum(client.hget(job_key(i), 'status') != 'succeeded' for i in ids)}, "
          f"steps run to success twice {len(twice)}, webhooks delivered {len(deliveries)} "
          f"(twice: {sum(n > 1 for n in deliveries.values())}); jobs resent by the lost-job sweeper "
          f"{sum(int(client.hget(job_key(i), 'resent') or 0) > 0 for i in ids)}")
    assert kills >= 10
    assert not twice, twice
    assert all(runs[(i, 0)] == 1 for i in ids)  # every job ran exactly once to success
    assert set(deliveries) == set(ids) and max(deliveries.values()) == 1

    wait_succeeded(client, [long_id], timeout_s=300)
    info = step(client, long_id)
    ran_s = info["finished_at"] - info["started_at"]
    long_runs = step_runs(fleet, ["whisper-base"])[(long_id, 0)]
    print(f"long transcription: ran {ran_s:.0f}s (visibility timeout {VISIBILITY_TIMEOUT_S}s), "
          f"attempts {client.hget(job_key(long_id), 'attempts')}, executions {long_runs}")
    assert ran_s > VISIBILITY_TIMEOUT_S, "the long job was not longer than the visibility timeout"
    assert client.hget(job_key(long_id), "attempts") == "1" and long_runs == 1
    assert client.hget(job_key(long_id), "resent") in (None, "0")
