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
the others. ``--shared-cores`` lets everything compete for all cores instead. The default config's VAD
against the machine's limit, nothing pinned: bench/bench_peers.py.

    .venv/bin/python bench/bench_fleet.py [--requests 320] [--clients 32] [--shared-cores]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
from harness import FIXTURES, Cores, CpuMeter, Result, drive, fleet

from speechmodels import ModelConfig, audio, load_model
from workers.batcher import MicroBatcher

MODELS = {
    "vad": {"model": "package:silero_vad", "model_type": "SileroVAD", "path": "/v1/audio/vad", "wait_ms": 5,
            "title": "VAD, 10 s clips"},
    "embed": {"model": "package:resemblyzer", "model_type": "HarmonySpeechEncoder", "path": "/v1/embed/speaker",
              "wait_ms": 10, "title": "speaker embedding, 1.6-4 s clips"},
}


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


def run_fleet(kind: str, batches: list[int], requests: int, clients: int, cores: Cores) -> dict[int, Result]:
    # bodies serialised once: the load generator shares the machine with the fleet, so it does
    # as little per request as it can
    bodies = clips(kind)
    results = {}
    with fleet([model_config(kind, b) for b in batches], cores) as (base, meter):
        for batch in batches:
            payloads = [json.dumps({"model": f"{kind}-b{batch}", "input_audio": base64.b64encode(body).decode()}).encode()
                        for body in bodies]

            async def send(http, index, payloads=payloads):
                return await http.post(MODELS[kind]["path"], content=payloads[index % len(payloads)],
                                       headers={"content-type": "application/json"})

            results[batch] = asyncio.run(drive(base, f"fleet  {kind}-b{batch}", send, requests, clients, meter))
    return results


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
    # workers plan their instances and threads for the cores they are pinned to (serve keeps this)
    os.environ["SPEECHFLEET_WORKER_CORES"] = str(len(cores.model))
    print(f"speechfleet fleet benchmark: {args.clients} concurrent clients, {args.requests} requests per run, "
          f"{os.cpu_count()} CPU cores")
    print(cores.describe())
    for kind in [args.only] if args.only else list(MODELS):
        print(f"\n{MODELS[kind]['title']}")
        through_fleet = run_fleet(kind, [16, 1], args.requests, args.clients, cores)
        local = run_in_process(kind, 16, args.requests, args.clients, cores)
        for result in (through_fleet[16], through_fleet[1], local):
            print(result.line())
        print(f"  batching gain (fleet, batch 16 / batch 1):      {through_fleet[16].rps / through_fleet[1].rps:5.2f}x")
        print(f"  fleet / in-process (batch 16, same batcher):   {through_fleet[16].rps / local.rps:5.2f}")
    print("\nfor scale: HSE itself on Silero VAD, 10 s clips, 32 clients, this kind of machine: 13-20 req/s, "
          "p95 ~930 ms, and 15 of 32 requests never answered")


if __name__ == "__main__":
    main()
