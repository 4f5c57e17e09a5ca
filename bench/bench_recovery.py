"""Recovery after SIGKILL, throughput under chaos, and the cost of a durable private Redis.

At default recovery settings (heartbeat, claim recovery, visibility timeout untouched):

1. Recovery time: two workers on one VAD model under load; the one holding a batch is
   SIGKILLed; the time from the kill until every message it held has *started* again on the
   other worker (and until they finished). p50 and max over ``--kills`` kills.
2. Throughput with and without chaos: three workers, a closed loop of ``--clients`` clients
   for ``--seconds`` s, once undisturbed and once with a random worker SIGKILLed (and started
   again) every 10 s; completed jobs per second, and their ratio.
3. The private Redis's appendfsync cost: one client writing job-like transactions (record,
   a 64 KB input, pending index, message), ephemeral vs ``everysec`` vs ``always``.

    .venv/bin/python bench/bench_recovery.py [--kills 5] [--seconds 60] [--clients 8]
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jobcontract.keys import CLAIMS_KEY, job_key, step_field
from speechfleet.redis_server import EmbeddedRedis
from tests.fleet import Fleet, fixture_audio
from workers.claims import UNACKED_KEY

MODEL = "vad-aux"
ASYNC = {"Prefer": "respond-async"}


def worker_id(process) -> str:
    return f"{MODEL}@{socket.gethostname()}.{process.pid}"


def step(client, job_id):
    raw = client.hget(job_key(job_id), step_field(0))
    return json.loads(raw) if raw else {}


def held_by(client, holder):
    tags = [tag for tag, who in client.hgetall(CLAIMS_KEY).items() if who == holder]
    return {json.loads(raw)[0]["headers"]["id"] for raw in (client.hmget(UNACKED_KEY, tags) if tags else []) if raw}


def wait_consumers(fleet, count, timeout_s=180):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{fleet.base_url}/ready", timeout=5).json()["models"].get(MODEL, 0) >= count:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"fewer than {count} consumers of {MODEL}")


def wait_done(client, ids, timeout_s=300):
    deadline = time.monotonic() + timeout_s
    while any(client.hget(job_key(i), "status") not in ("succeeded", "failed", "cancelled") for i in ids):
        if time.monotonic() > deadline:
            raise TimeoutError("jobs did not finish")
        time.sleep(0.2)
    failed = [i for i in ids if client.hget(job_key(i), "status") != "succeeded"]
    if failed:
        raise RuntimeError(f"{len(failed)} jobs did not succeed")


def recovery_times(fleet, client, kills: int) -> tuple[list[float], list[float]]:
    noise = base64.b64encode(fixture_audio("noise_exercise_bike.wav")).decode()
    started, finished = [], []
    with httpx.Client(base_url=fleet.base_url, timeout=60) as http:
        for round_ in range(kills):
            wait_consumers(fleet, 2)
            victim = fleet.workers["victim"]
            vid = worker_id(victim)
            ids = [http.post("/v1/audio/vad", headers=ASYNC, json={"model": MODEL, "input_audio": noise}).json()["id"]
                   for _ in range(30)]
            deadline = time.monotonic() + 60
            while not any(step(client, i).get("worker") == vid and step(client, i).get("status") == "running"
                          for i in ids):
                if time.monotonic() > deadline:
                    raise TimeoutError("the victim never ran a batch")
                time.sleep(0.02)
            held = held_by(client, vid)
            killed_at = time.time()
            fleet.kill_worker("victim")
            fleet.start_worker(MODEL, name="victim")
            wait_done(client, ids)
            moved = [step(client, i) for i in held]
            moved = [s for s in moved if s["worker"] != vid]
            if not moved:
                continue
            started.append(max(s["started_at"] for s in moved) - killed_at)
            finished.append(max(s["finished_at"] for s in moved) - killed_at)
            print(f"  kill {round_ + 1}: {len(moved)} held messages started again within {started[-1]:.1f}s, "
                  f"finished within {finished[-1]:.1f}s", flush=True)
    return started, finished


def throughput(fleet, seconds: float, clients: int, chaos: bool, names: list[str]) -> tuple[float, int]:
    speech = base64.b64encode(fixture_audio("jfk.flac")).decode()
    done: list[str] = []
    stop = threading.Event()

    def client_loop():
        with httpx.Client(base_url=fleet.base_url, timeout=120) as http:
            while not stop.is_set():
                response = http.post("/v1/audio/vad", headers={"Prefer": "wait=120"},
                                     json={"model": MODEL, "input_audio": speech})
                if response.status_code == 200:
                    done.append(response.json()["id"])

    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    kills = 0
    rng = random.Random(7)
    while time.monotonic() - started < seconds:
        time.sleep(min(10, max(0.0, seconds - (time.monotonic() - started))))
        if chaos and time.monotonic() - started < seconds:
            name = rng.choice(names)
            fleet.kill_worker(name)
            fleet.start_worker(MODEL, name=name)
            kills += 1
    count = len(done)
    elapsed = time.monotonic() - started
    stop.set()
    for thread in threads:
        thread.join(150)
    return count / elapsed, kills


def fsync_cost(jobs: int = 2000) -> dict[str, tuple[float, float, float]]:
    payload = b"\0" * 65536
    costs = {}
    for label in ("ephemeral", "everysec", "always"):
        with tempfile.TemporaryDirectory() as folder, \
                EmbeddedRedis(data_dir=None if label == "ephemeral" else Path(folder),
                              fsync="everysec" if label == "ephemeral" else label) as server:
            client = redis.Redis.from_url(server.url)
            latencies = []
            for n in range(jobs):
                began = time.perf_counter()
                with client.pipeline() as pipe:  # what accepting a job writes (jobcontract.async_store)
                    pipe.hset(f"bench:job:{n}", mapping={"status": "queued", "plan": "x" * 300, "created_at": n})
                    pipe.set(f"bench:input:{n}", payload)
                    pipe.zadd("bench:pending", {str(n): n})
                    pipe.lpush("bench:queue", "m" * 600)
                    pipe.execute()
                latencies.append(time.perf_counter() - began)
            latencies.sort()
            costs[label] = (statistics.median(latencies) * 1000, latencies[int(0.99 * len(latencies))] * 1000,
                            len(latencies) / sum(latencies))
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    with EmbeddedRedis() as server:
        fleet = Fleet(server)
        client = redis.Redis.from_url(server.url, decode_responses=True)
        try:
            fleet.start_worker(MODEL, name="survivor")
            fleet.start_worker(MODEL, name="victim")
            fleet.start_api()
            wait_consumers(fleet, 2)
            print(f"1. recovery after SIGKILL ({args.kills} kills, 2 workers, 30 one-minute VAD jobs each time)")
            started, finished = recovery_times(fleet, client, args.kills)
            print(f"   held messages started again: p50 {statistics.median(started):.1f}s, max {max(started):.1f}s "
                  f"after the kill; finished: p50 {statistics.median(finished):.1f}s, max {max(finished):.1f}s")

            fleet.start_worker(MODEL, name="third")
            names = ["survivor", "victim", "third"]
            wait_consumers(fleet, 3)
            print(f"2. throughput, 3 workers, {args.clients} clients, {args.seconds:g}s each (jfk.flac VAD)")
            calm, _ = throughput(fleet, args.seconds, args.clients, chaos=False, names=names)
            wait_consumers(fleet, 3)
            stormy, kills = throughput(fleet, args.seconds, args.clients, chaos=True, names=names)
            print(f"   no kills {calm:.1f} jobs/s; SIGKILL every 10 s ({kills} kills) {stormy:.1f} jobs/s; "
                  f"ratio {stormy / calm:.2f}")
        finally:
            fleet.stop()

    print("3. private Redis appendfsync cost (one client, job-like transactions with a 64 KB input)")
    for label, (p50, p99, rate) in fsync_cost().items():
        print(f"   {label:9s}: p50 {p50:.3f} ms, p99 {p99:.3f} ms, {rate:.0f} jobs/s")


if __name__ == "__main__":
    main()
