"""Fleet benchmark: throughput and latency at 32 concurrent clients, from one run.

For VAD on 10 s clips and for speaker embeddings (3-4 s CMU ARCTIC clips) it measures
  - the fleet (``speechfleet serve``: private Redis, one worker, the API) with
    max_batch_size 16 and with max_batch_size 1  -> batching gain
  - the same model in-process behind the same MicroBatcher (no Redis, no HTTP), 32 threads
    -> fleet / in-process ratio
and prints requests/s, p50 and p95 latency and the ratios.

    .venv/bin/python bench/bench_fleet.py [--requests 320] [--clients 32]
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

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def line(self) -> str:
        p50 = statistics.median(self.latencies) * 1000
        p95 = np.percentile(self.latencies, 95) * 1000
        return (f"  {self.label:<34} {self.rps:8.1f} req/s   p50 {p50:7.1f} ms   p95 {p95:7.1f} ms"
                f"   errors {self.errors}")


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


async def drive(base: str, path: str, model: str, bodies: list[bytes], requests: int, clients: int) -> Result:
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
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return Result(f"fleet  {model}", time.perf_counter() - started, latencies, errors)


def run_fleet(kind: str, batches: list[int], requests: int, clients: int) -> dict[int, Result]:
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "config.yml"
        config.write_text(yaml.safe_dump({"model_configs": [model_config(kind, b) for b in batches]}))
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
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
            return {b: asyncio.run(drive(base, MODELS[kind]["path"], f"{kind}-b{b}", clips(kind), requests, clients))
                    for b in batches}
        finally:
            serve.send_signal(signal.SIGTERM)
            serve.wait(60)


def run_in_process(kind: str, batch: int, requests: int, clients: int) -> Result:
    """The same model and batcher, called from 32 threads: no Redis, no HTTP, no Celery."""
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    config = ModelConfig.model_validate(model_config(kind, batch))
    model = load_model(config)
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
        started = time.perf_counter()
        list(pool.map(one, range(requests)))
        elapsed = time.perf_counter() - started
    batcher.close()
    return Result(f"in-process {kind}-b{batch}", elapsed, latencies, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=320)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--only", choices=sorted(MODELS), default=None)
    args = parser.parse_args()
    print(f"speechfleet fleet benchmark: {args.clients} concurrent clients, {args.requests} requests per run, "
          f"{os.cpu_count()} CPU cores")
    for kind in [args.only] if args.only else list(MODELS):
        what = "VAD, 10 s clips" if kind == "vad" else "speaker embedding, 1.6-4 s clips"
        print(f"\n{what}")
        fleet = run_fleet(kind, [16, 1], args.requests, args.clients)
        local = run_in_process(kind, 16, args.requests, args.clients)
        for result in (fleet[16], fleet[1], local):
            print(result.line())
        print(f"  batching gain (fleet, batch 16 / batch 1):      {fleet[16].rps / fleet[1].rps:5.2f}x")
        print(f"  fleet / in-process (batch 16, same batcher):   {fleet[16].rps / local.rps:5.2f}")
    print("\nfor scale: HSE itself on Silero VAD, 10 s clips, 32 clients, this kind of machine: 13-20 req/s, "
          "p95 ~930 ms, and 15 of 32 requests never answered")


if __name__ == "__main__":
    main()
