"""How fast a worker comes up from zero, per model of the default config.yml, from one run:

  - load + warm-up as a worker does it (``speechmodels.load_model`` then ``warm_up``), each model
    in a fresh Python process (imports included: a new pod pays them too)
  - ``speechfleet worker --models <name>`` started against a private Redis: seconds to its first
    heartbeat (it consumes from then on), and to the first request the API answers through it,
    sent the moment the worker process starts (the API queues it when the model is marked
    ``scale_from_zero``; otherwise it answers 503 and the request is resent every 0.2 s)

What Kubernetes adds on top (scheduling, image pull, KEDA's polling interval) is not measured.

    flock /tmp/bench.lock .venv/bin/python bench/bench_cold_start.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
import redis
import yaml
from harness import FIXTURES, ROOT

from jobcontract.keys import consumers_key
from speechfleet.redis_server import EmbeddedRedis, free_port
from speechmodels import load_model_configs
from speechmodels.registry import (
    AUDIO_CONVERSION,
    SPEAKER_EMBEDDING,
    SPEECH_SYNTHESIS,
    TRANSCRIPTION,
    VAD,
    capabilities_of,
)
from speechmodels.weights import CACHE_ENV

CONFIG = ROOT / "config.yml"
_AUDIO = base64.b64encode((FIXTURES / "jfk.flac").read_bytes()).decode()
# one small request per capability a worker serves on its own (the diarizer is a pipeline step)
REQUESTS = {
    VAD: ("/v1/audio/vad", lambda model: {"model": model, "input_audio": _AUDIO}),
    SPEAKER_EMBEDDING: ("/v1/embed/speaker", lambda model: {"model": model, "input_audio": _AUDIO}),
    TRANSCRIPTION: ("/v1/audio/transcriptions", lambda model: {"model": model, "input_audio": _AUDIO}),
    SPEECH_SYNTHESIS: ("/v1/audio/speech", lambda model: {"model": model, "input": "Hello from a cold worker."}),
    AUDIO_CONVERSION: ("/v1/audio/convert", lambda model: {"model": model, "source_audio": _AUDIO}),
}
CHILD = """
import json, resource, sys, time
started = time.perf_counter()
from speechmodels import load_model, load_model_configs
(config,) = [c for c in load_model_configs(sys.argv[1]) if c.name == sys.argv[2]]
imported = time.perf_counter()
model = load_model(config)
loaded = time.perf_counter()
model.warm_up()
warm = time.perf_counter()
print(json.dumps({"import": imported - started, "load": loaded - imported, "warm_up": warm - loaded,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""
# as `speechfleet worker` sets them before numpy is imported (the worker then picks each model's
# threads for the cores it owns; the worker columns measure that path itself)
WORKER_THREADS_ENV = {variable: "1" for variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")}


def load_in_fresh_process(name: str) -> dict[str, float]:
    # an empty weights cache, as a new pod's emptyDir: a split model is joined again
    with tempfile.TemporaryDirectory() as cache:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", CHILD, str(CONFIG), name], capture_output=True, text=True,
                              cwd=ROOT, check=True, timeout=600,
                              env={**os.environ, **WORKER_THREADS_ENV, CACHE_ENV: cache})
        elapsed = time.perf_counter() - started
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "process": elapsed}


def request_for(config) -> tuple[str, dict] | None:
    for capability in sorted(capabilities_of(config)):
        if capability in REQUESTS:
            path, body = REQUESTS[capability]
            return path, body(config.name)
    return None


def worker_cold_start(config, env: dict[str, str], client: redis.Redis,
                      api_url: str) -> tuple[float, float | None, float]:
    """Seconds from spawning a worker to its first heartbeat and to the first answered request,
    and the worker's resident memory then (MB)."""
    cache = tempfile.TemporaryDirectory()  # a new pod's empty weights cache
    started = time.perf_counter()
    worker = subprocess.Popen([sys.executable, "-m", "speechfleet.cli", "worker", "--models", config.name,
                               "--loglevel", "WARNING"], env={**env, CACHE_ENV: cache.name}, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: list[float] = []

    def watch_heartbeat() -> None:
        while not client.zcard(consumers_key(config.name)) and worker.poll() is None:
            time.sleep(0.05)
        seen.append(time.perf_counter() - started)

    watcher = threading.Thread(target=watch_heartbeat, daemon=True)
    watcher.start()
    try:
        request, answered = request_for(config), None
        while request is not None and answered is None:
            status = httpx.post(api_url + request[0], json=request[1], timeout=300).status_code
            if status == 200:
                answered = time.perf_counter() - started
            elif status != 503 or worker.poll() is not None:
                raise RuntimeError(f"{request[0]} for {config.name} answered {status} (worker: {worker.poll()})")
            else:
                time.sleep(0.2)
        watcher.join(300)
        if worker.poll() is not None:
            raise RuntimeError(f"worker for {config.name} exited with {worker.returncode}")
        return seen[0], answered, psutil.Process(worker.pid).memory_info().rss / 2**20
    finally:
        worker.terminate()
        worker.wait(60)
        client.delete(consumers_key(config.name))
        cache.cleanup()


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="fresh starts per model (the median is shown)")
    args = parser.parse_args()
    configs = load_model_configs(CONFIG)
    print(f"cold start per model of {CONFIG.name} on this machine ({os.cpu_count()} CPU cores, no GPU; "
          f"median of {args.repeats} fresh starts each)\n")
    loads = {config.name: median_of([load_in_fresh_process(config.name) for _ in range(args.repeats)])
             for config in configs}

    with EmbeddedRedis() as server, tempfile.TemporaryDirectory() as scratch:
        # the same models, every one accepted with no worker yet, as the Kubernetes manifests run them
        document = yaml.safe_load(CONFIG.read_text())
        for entry in document["model_configs"]:
            entry["scale_from_zero"] = True
        config_path = Path(scratch) / "config.yml"
        config_path.write_text(yaml.safe_dump(document))
        port = free_port()
        env = {**os.environ, "REDIS_URL": server.url, "SPEECHFLEET_CONFIG": str(config_path),
               "SPEECHFLEET_SYNC_WAIT_S": "300"}
        api = subprocess.Popen([sys.executable, "-m", "speechfleet.cli", "api", "--port", str(port)], env=env,
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        api_url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(api_url + "/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                time.sleep(0.2)
            client = redis.Redis.from_url(server.url)
            starts = {config.name: [worker_cold_start(config, env, client, api_url) for _ in range(args.repeats)]
                      for config in configs}
        finally:
            api.terminate()
            api.wait(30)

    header = (f"{'model':<24} {'family':<22} {'import':>7} {'load':>7} {'warm-up':>8} {'process':>8} "
              f"{'peak RSS':>9} {'worker→heartbeat (range)':>25} {'worker→1st answer':>18} {'worker RSS':>10}")
    print(header)
    print("-" * len(header))
    for config in configs:
        times = loads[config.name]
        heartbeats = [heartbeat for heartbeat, _, _ in starts[config.name]]
        answers = [answered for _, answered, _ in starts[config.name] if answered is not None]
        rss = statistics.median(rss for _, _, rss in starts[config.name])
        spread = f"{statistics.median(heartbeats):6.2f}s ({min(heartbeats):.1f}-{max(heartbeats):.1f})"
        answer = f"{statistics.median(answers):17.2f}s" if answers else f"{'(pipeline step)':>18}"
        print(f"{config.name:<24} {config.model_type:<22} {times['import']:6.2f}s {times['load']:6.2f}s "
              f"{times['warm_up']:7.2f}s {times['process']:7.2f}s {times['rss_mb']:6.0f} MB {spread:>25} {answer} "
              f"{rss:7.0f} MB")
    print("\nimport / load / warm-up: speechmodels import, load_model, warm_up in a fresh process (process: its "
          "whole life,\ninterpreter and torch start included); peak RSS: of that process (worker RSS: of the "
          "worker,\nonce it answered). worker→: from spawning "
          "`speechfleet worker`\nto its first heartbeat in Redis, and to the API's 200 for a request sent at spawn "
          "(queued as scale_from_zero,\nor resent on 503 until a worker serves it). Not included: pod scheduling, "
          "image pull, KEDA's polling interval.")


if __name__ == "__main__":
    main()
