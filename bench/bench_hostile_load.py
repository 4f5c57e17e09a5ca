"""Memory and latency under large and mixed inputs, through `speechfleet serve` (Silero VAD):

1. A burst of 30 concurrent ~10-minute VAD requests (25 MB bodies): resident memory of the
   API, the worker and Redis before, at the peak during, and after; how many bodies the
   in-flight bound turned away (503 + Retry-After) and how many were served.
2. A 1.6 s VAD request, one at a time, while 8 ten-minute requests run: p50/p95 against the
   same request on the idle fleet (target: p95 within 1 s). Length lanes keep it out of the
   long requests' batches (workers/lanes.py).

Run: .venv/bin/python bench/bench_hostile_load.py
"""

from __future__ import annotations

import asyncio
import base64
import io
import statistics
import threading
import time

import httpx
import numpy as np
import psutil
import soundfile
from harness import FIXTURES, Cores, fleet

from speechmodels import audio

CONFIG = [{"name": "silero-vad", "model": "package:silero_vad", "model_type": "SileroVAD", "max_batch_size": 16,
           "max_wait_ms": 5}]


def long_clip(seconds: float) -> str:
    speech = audio.decode((FIXTURES / "jfk.flac").read_bytes(), 16_000)
    samples = np.tile(speech, int(seconds * 16_000 / speech.size) + 1)[: int(seconds * 16_000)]
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, 16_000, format="WAV", subtype="PCM_16")
    return base64.b64encode(buffer.getvalue()).decode()


class RssWatch:
    """Resident memory of the fleet's processes, sampled every 50 ms: the peak is kept."""

    def __init__(self, processes: dict[str, psutil.Process]):
        self.processes = processes
        self.peak = {name: 0.0 for name in processes}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now(self) -> dict[str, float]:
        return {name: process.memory_info().rss / 2**20 for name, process in self.processes.items()}

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, rss in self.now().items():
                self.peak[name] = max(self.peak[name], rss)
            time.sleep(0.05)

    def __enter__(self) -> RssWatch:
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()


async def burst(base: str, body: dict, clients: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=base, timeout=600, limits=httpx.Limits(max_connections=clients)) as http:
        return await asyncio.gather(*(http.post("/v1/audio/vad", json=body) for _ in range(clients)),
                                    return_exceptions=True)


async def short_latencies(base: str, short: dict, count: int) -> list[float]:
    latencies = []
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        for _ in range(count):
            started = time.perf_counter()
            response = await http.post("/v1/audio/vad", json=short)
            assert response.status_code == 200, response.text
            latencies.append(time.perf_counter() - started)
    return latencies


async def short_beside_long(base: str, short: dict, long: dict) -> tuple[list[float], int]:
    async with httpx.AsyncClient(base_url=base, timeout=600) as http:
        longs = [asyncio.create_task(http.post("/v1/audio/vad", json=long)) for _ in range(8)]
        await asyncio.sleep(1.0)  # the long ones are decoded and running
        latencies = []
        while not all(task.done() for task in longs) and len(latencies) < 40:
            latencies += await short_latencies(base, short, 1)
        results = await asyncio.gather(*longs, return_exceptions=True)
        done = sum(not isinstance(r, Exception) and r.status_code == 200 for r in results)
    return latencies, done


def line(label: str, latencies: list[float]) -> str:
    return (f"  {label:<44} p50 {statistics.median(latencies) * 1000:7.1f} ms   "
            f"p95 {np.percentile(latencies, 95) * 1000:7.1f} ms   n={len(latencies)}")


def main() -> None:
    long = {"model": "silero-vad", "input_audio": long_clip(590), "get_timestamps": True}
    short = {"model": "silero-vad", "input_audio": long_clip(1.6), "get_timestamps": True}
    print(f"long body: {len(long['input_audio']) / 2**20:.1f} MB of base64 (590 s of 16 kHz WAV)")
    with fleet(CONFIG, Cores.choose(shared=True)) as (base, meter):
        processes = {name: process for name, process in meter.processes.items() if name != "this process"}
        with RssWatch(processes) as watch:
            before = watch.now()
            responses = asyncio.run(burst(base, long, 30))
            time.sleep(2)
            after = watch.now()
        failures = [f"{type(r).__name__}: {r}" for r in responses if isinstance(r, Exception)]
        responses = [r for r in responses if not isinstance(r, Exception)]
        codes = [response.status_code for response in responses]
        print("\n1. 30 concurrent ~10-minute VAD requests (resident MB: before / peak during / after)")
        for name in processes:
            print(f"  {name:<24} {before[name]:8.1f} {watch.peak[name]:8.1f} {after[name]:8.1f}")
        reasons = sorted({r.json().get("reason") for r in responses if r.status_code != 200})
        print(f"  served {codes.count(200)}, turned away {len(codes) - codes.count(200)} {reasons} "
              f"(503 + Retry-After: the in-flight body bound); transport errors {len(failures)} {failures[:3]}")

        idle = asyncio.run(short_latencies(base, short, 20))
        loaded, finished = asyncio.run(short_beside_long(base, short, long))
        print("\n2. a 1.6 s VAD request")
        print(line("alone", idle))
        print(line(f"beside 8 ten-minute requests ({finished} served)", loaded))
        print(f"  p95 beside the long ones: {np.percentile(loaded, 95):.3f} s (target <= 1 s)")


if __name__ == "__main__":
    main()
