"""Fleet benchmark: throughput and latency at 32 concurrent clients, from one run.

For VAD on 10 s clips and for speaker embeddings (3-4 s CMU ARCTIC clips) it measures
  - the fleet (``speechfleet serve``: private Redis, one worker, the API) with
    max_batch_size 16 and with max_batch_size 1  -> batching gain
  - the same model in-process behind the same MicroBatcher (no Redis, no HTTP), 32 threads
    -> fleet / in-process ratio
and prints requests/s, p50 and p95 latency, CPU per request of every process, and the ratios.

Cores: by default the model gets the same compute in both set-ups, as in a deployment where
API replicas and Redis have CPUs of their own: worker processes (and the in-process run) are
pinned to the last core with one model thread; the API, Redis and this load generator share
the others. ``--shared-cores`` lets everything compete for all cores instead.

    .venv/bin/python bench/bench_fleet.py [--requests 320] [--clients 32] [--shared-cores]
"""

from __future__ import annotations

import os

# as in a worker process (speechfleet worker sets the same): numpy's BLAS stays single-threaded
for _variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse
import asyncio
import base64
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures" / "audio"
sys.path.insert(0, str(ROOT))

from speechfleet.redis_server import free_port  # noqa: E402
from speechmodels import ModelConfig, audio, load_model  # noqa: E402
from workers.batcher import MicroBatcher  # noqa: E402

MODELS = {
    "vad": {"model": "package:silero_vad", "model_type": "SileroVAD", "path": "/v1/audio/vad", "wait_ms": 5},
    "embed": {"model": "package:resemblyzer", "model_type": "HarmonySpeechEncoder", "path": "/v1/embed/speaker",
              "wait_ms": 10},
}


JSON = {"content-type": "application/json"}


@dataclass
class Result:
    label: str
    seconds: float
    latencies: list[float]
    errors: int
    cpu_ms: dict[str, float] | None = None  # CPU milliseconds per request, by process

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def line(self) -> str:
        p50 = statistics.median(self.latencies) * 1000
        p95 = np.percentile(self.latencies, 95) * 1000
        line = (f"  {self.label:<34} {self.rps:8.1f} req/s   p50 {p50:7.1f} ms   p95 {p95:7.1f} ms"
                f"   errors {self.errors}")
        if self.cpu_ms:
            line += "\n      CPU per request: " + ", ".join(f"{name} {ms:.1f} ms" for name, ms in self.cpu_ms.items())
        return line


class CpuMeter:
    """CPU time used per request by each process of the fleet (and by this load generator)."""

    def __init__(self, serve_pid: int | None):
        self.processes = {"this process": psutil.Process()}
        if serve_pid is not None:
            for child in psutil.Process(serve_pid).children(recursive=True):
                command = " ".join(child.cmdline())
                if "redis-server" in command:
                    self.processes["redis"] = child
                elif " worker " in command:
                    self.processes[f"worker {command.split('--models ')[1].split()[0]}"] = child
                elif " api " in command:
                    self.processes["api"] = child
        self._start: dict[str, float] = {}

    def start(self) -> None:
        self._start = {name: sum(p.cpu_times()[:2]) for name, p in self.processes.items()}

    def per_request(self, requests: int) -> dict[str, float]:
        used = {name: (sum(p.cpu_times()[:2]) - self._start[name]) * 1000 / requests
                for name, p in self.processes.items()}
        return {name: used[name] for name in sorted(used, key=lambda n: n == "this process")}


def clips(kind: str) -> list[bytes]:
    if kind == "vad":  # 10 s of JFK, 16 kHz WAV
        samples = audio.decode((FIXTURES / "jfk.flac").read_bytes(), 16_000)[: 10 * 16_000]
        return [audio.encode_wav(samples, 16_000)]
    return [(FIXTURES / f"cmu_arctic_us_{name}.wav").read_bytes()
            for name in ("aew_a0001", "aew_a0002", "aew_a0003", "axb_a0004", "axb_a0005", "axb_a0006")]


def model_config(kind: str, batch: int) -> dict:
    spec = MODELS[kind]
    return {"name": f"{kind}-b{batch}", "model": spec["model"], "model_type": spec["model_type"],
            "max_batch_size": batch, "max_wait_ms": spec["wait_ms"]}


async def drive(base: str, path: str, model: str, bodies: list[bytes], requests: int, clients: int,
                meter: CpuMeter) -> Result:
    # bodies serialised once: the load generator shares the 2 cores with the fleet, so it does
    # as little per request as it can
    payloads = [json.dumps({"model": model, "input_audio": base64.b64encode(body).decode()}).encode()
                for body in bodies]
    latencies: list[float] = []
    errors = 0
    counter = iter(range(requests))
    async with httpx.AsyncClient(base_url=base, timeout=120,
                                 limits=httpx.Limits(max_connections=clients)) as http:
        async def client() -> None:
            nonlocal errors
            for index in counter:
                started = time.perf_counter()
                response = await http.post(path, content=payloads[index % len(payloads)], headers=JSON)
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1

        for _ in range(clients):  # warm-up: one round
            await http.post(path, content=payloads[0], headers=JSON)
        meter.start()
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - started
        cpu = meter.per_request(requests)
        cpu["load generator"] = cpu.pop("this process")
        return Result(f"fleet  {model}", elapsed, latencies, errors, cpu)


@dataclass(frozen=True)
class Cores:
    model: set[int]  # where workers and the in-process run compute
    rest: set[int]  # API, Redis, load generator
    model_threads: int

    @classmethod
    def choose(cls, shared: bool) -> Cores:
        every = set(range(os.cpu_count() or 1))
        if shared or len(every) < 2:
            return cls(every, every, len(every))
        last = max(every)
        return cls({last}, every - {last}, 1)


def run_fleet(kind: str, batches: list[int], requests: int, clients: int, cores: Cores) -> dict[int, Result]:
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "config.yml"
        config.write_text(yaml.safe_dump({"model_configs": [model_config(kind, b) for b in batches]}))
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        env["SPEECHFLEET_TORCH_THREADS"] = str(cores.model_threads)
        serve = subprocess.Popen([sys.executable, "-m", "speechfleet.cli", "serve", "--config", str(config),
                                  "--port", str(port)], cwd=ROOT, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or serve.poll() is not None:
                    raise RuntimeError("fleet did not become ready")
                time.sleep(0.5)
            meter = CpuMeter(serve.pid)
            for name, process in meter.processes.items():
                process.cpu_affinity(sorted(cores.model if name.startswith("worker") else cores.rest))
            return {b: asyncio.run(drive(base, MODELS[kind]["path"], f"{kind}-b{b}", clips(kind), requests, clients,
                                         meter))
                    for b in batches}
        finally:
            serve.send_signal(signal.SIGTERM)
            serve.wait(60)


def run_in_process(kind: str, batch: int, requests: int, clients: int, cores: Cores) -> Result:
    """The same model and batcher, called from 32 threads: no Redis, no HTTP, no Celery."""
    import torch

    torch.set_num_threads(cores.model_threads)
    psutil.Process().cpu_affinity(sorted(cores.model))
    config = ModelConfig.model_validate(model_config(kind, batch))
    model = load_model(config)
    model.warm_up()
    meter = CpuMeter(None)
    batcher = MicroBatcher(model.infer_batch, max_batch_size=batch, max_wait_ms=config.max_wait_ms, name="bench")
    bodies = clips(kind)
    latencies: list[float] = []

    def one(index: int) -> None:
        started = time.perf_counter()
        batcher.submit(model.prepare({"audio": bodies[index % len(bodies)]})).result()
        latencies.append(time.perf_counter() - started)

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(clients)))  # warm-up
        latencies.clear()
        meter.start()
        started = time.perf_counter()
        list(pool.map(one, range(requests)))
        elapsed = time.perf_counter() - started
    batcher.close()
    psutil.Process().cpu_affinity(sorted(cores.model | cores.rest))
    cpu = meter.per_request(requests)
    return Result(f"in-process {kind}-b{batch}", elapsed, latencies, 0, {"in-process": cpu["this process"]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=320)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--only", choices=sorted(MODELS), default=None)
    parser.add_argument("--shared-cores", action="store_true", help="no pinning: everything competes for all cores")
    args = parser.parse_args()
    cores = Cores.choose(args.shared_cores)
    print(f"speechfleet fleet benchmark: {args.clients} concurrent clients, {args.requests} requests per run, "
          f"{os.cpu_count()} CPU cores")
    print(f"model compute on cores {sorted(cores.model)} with {cores.model_threads} thread(s); API, Redis and "
          f"load generator on cores {sorted(cores.rest)}")
    for kind in [args.only] if args.only else list(MODELS):
        what = "VAD, 10 s clips" if kind == "vad" else "speaker embedding, 1.6-4 s clips"
        print(f"\n{what}")
        fleet = run_fleet(kind, [16, 1], args.requests, args.clients, cores)
        local = run_in_process(kind, 16, args.requests, args.clients, cores)
        for result in (fleet[16], fleet[1], local):
            print(result.line())
        print(f"  batching gain (fleet, batch 16 / batch 1):      {fleet[16].rps / fleet[1].rps:5.2f}x")
        print(f"  fleet / in-process (batch 16, same batcher):   {fleet[16].rps / local.rps:5.2f}")
    print("\nfor scale: HSE itself on Silero VAD, 10 s clips, 32 clients, this kind of machine: 13-20 req/s, "
          "p95 ~930 ms, and 15 of 32 requests never answered")


if __name__ == "__main__":
    main()
