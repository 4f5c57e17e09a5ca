"""Whisper window packing benchmark, from one run:

  - short clips (the 2-5 s CMU ARCTIC fixtures) at 32 concurrent clients through the fleet
    (OpenAI multipart calls), Whisper tiny.en with ``pack_windows`` on and off, against
    faster-whisper's ``WhisperModel.transcribe`` in-process, one request after another
    (-> packing gain; the target is on / off >= 2.5x)
  - word error rate on the fixtures (ARCTIC + JFK, their references), every clip sent several
    times at once, packed and unpacked side by side (target: packed <= unpacked + 0.01)
  - a 10-minute file through the fleet (packing on) against faster-whisper's
    ``BatchedInferencePipeline`` in-process on the same file: real-time factors and their ratio
    (target: the pipeline's time / the fleet's time >= 0.9)
  - in-process: the share of a packed batch spent aligning words (packed windows are always
    aligned: words are what they are split by)

Cores are pinned as in bench_fleet.py (model on the last core, one thread, in-process runs
there too; ``--shared-cores`` to let everything compete).

    .venv/bin/python bench/bench_stt_packing.py [--requests 64] [--clients 32] [--shared-cores]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import httpx
import jiwer
import numpy as np
from bench_stt import TINY_EN, model_config, normalise
from harness import FIXTURES, Cores, drive, fleet

from speechmodels import ModelConfig, audio, load_model
from tests.fleet import FIXTURE_TRANSCRIPTS

SHORT = [name for name in FIXTURE_TRANSCRIPTS if name.startswith("cmu_arctic")]
LONG_SECONDS = 600


def short_clips() -> dict[str, bytes]:
    """The ARCTIC fixtures between 2 and 5 s."""
    clips = {name: (FIXTURES / name).read_bytes() for name in SHORT}
    return {name: data for name, data in clips.items() if 2.0 <= len(audio.decode(data, 16_000)) / 16_000 <= 5.0}


def ten_minutes() -> np.ndarray:
    """Speech as a recording has it: every fixture with its reference, in turn, with pauses of
    0.4-1.5 s, to 10 minutes."""
    rng = np.random.default_rng(0)
    clips = [audio.decode((FIXTURES / name).read_bytes(), 16_000) for name in FIXTURE_TRANSCRIPTS]
    parts, total = [], 0
    while total < LONG_SECONDS * 16_000:
        for clip in clips:
            parts += [clip, np.zeros(int(rng.uniform(0.4, 1.5) * 16_000), dtype=np.float32)]
            total += len(parts[-1]) + len(clip)
    return np.concatenate(parts)[: LONG_SECONDS * 16_000]


def histogram(base_url: str, metric: str, model: str) -> tuple[float, float]:
    """(count, sum) of one fleet histogram, from /metrics."""
    values = {"count": 0.0, "sum": 0.0}
    for line in httpx.get(f"{base_url}/metrics", timeout=30).text.splitlines():
        for kind in values:
            if line.startswith(f"speechfleet_{metric}_{kind}{{") and f'model="{model}"' in line:
                values[kind] = float(line.rsplit(" ", 1)[1])
    return values["count"], values["sum"]


def in_process(cores: Cores, clips: dict[str, bytes], requests: int, long_wav: bytes) -> dict:
    """faster-whisper itself on the model cores: one request after another, and the batched
    pipeline on the 10-minute file; and our packed batch with its alignment timed."""
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    from speechmodels.weights import resolve_weights

    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cores.model)
    try:
        whisper = WhisperModel(str(resolve_weights(TINY_EN)), device="cpu",
                               compute_type="int8", cpu_threads=cores.model_threads, local_files_only=True)
        names = list(clips)
        decoded = {name: audio.decode(data, 16_000) for name, data in clips.items()}
        list(whisper.transcribe(decoded[names[0]], language="en")[0])  # warm
        started = time.perf_counter()
        for index in range(requests):
            list(whisper.transcribe(decoded[names[index % len(names)]], language="en")[0])
        one_by_one = time.perf_counter() - started

        long_samples = audio.decode(long_wav, 16_000)
        pipeline = BatchedInferencePipeline(whisper)
        started = time.perf_counter()
        segments, _ = pipeline.transcribe(long_samples, language="en")
        long_text = " ".join(segment.text for segment in segments)
        batched_pipeline = time.perf_counter() - started

        ours = load_model(ModelConfig(name="packed", model=TINY_EN, model_type="FasterWhisper",
                                      options={"compute_type": "int8", "cpu_threads": cores.model_threads}))
        aligning = [0.0]
        align = ours.whisper.add_word_timestamps

        def timed_align(*args, **kwargs):
            started = time.perf_counter()
            try:
                return align(*args, **kwargs)
            finally:
                aligning[0] += time.perf_counter() - started

        ours.whisper.add_word_timestamps = timed_align
        items = [ours.prepare({"audio": clips[names[i % len(names)]]}) for i in range(8)]
        ours.infer_batch(items)
        aligning[0] = 0.0
        started = time.perf_counter()
        ours.infer_batch(items)
        packed_batch = time.perf_counter() - started
    finally:
        os.sched_setaffinity(0, affinity)
    return {"one_by_one": one_by_one, "pipeline": batched_pipeline, "pipeline_text": long_text,
            "packed_batch": packed_batch, "aligning": aligning[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--wer-copies", type=int, default=4, help="each fixture sent this many times at once")
    parser.add_argument("--shared-cores", action="store_true")
    args = parser.parse_args()
    cores = Cores.choose(args.shared_cores)
    clips = short_clips()
    names = list(clips)
    seconds = {name: len(audio.decode(data, 16_000)) / 16_000 for name, data in clips.items()}
    long_wav = audio.encode_wav(ten_minutes(), 16_000)
    print(f"speechfleet Whisper window packing benchmark: {args.clients} concurrent clients, {args.requests} requests "
          f"per run of {len(names)} clips of {min(seconds.values()):.1f}-{max(seconds.values()):.1f} s, "
          f"{os.cpu_count()} CPU cores\n{cores.describe()}\n")
    configs = [model_config("packed", TINY_EN, 32, cores.model_threads),
               model_config("unpacked", TINY_EN, 32, cores.model_threads)]
    configs[1]["options"]["pack_windows"] = False
    for config in configs:
        config["max_wait_ms"] = 20
    results, packing_seen = {}, {}
    wer_texts: dict[str, list[tuple[str, str]]] = {}
    with fleet(configs, cores) as (base_url, meter):
        for model in ("packed", "unpacked"):

            async def send(http, index, model=model):
                name = names[index % len(names)]
                return await http.post("/v1/audio/transcriptions", files={"file": (name, clips[name])},
                                       data={"model": model, "response_format": "json"})

            before = histogram(base_url, "stt_requests_per_window", model)
            results[model] = asyncio.run(drive(base_url, f"fleet  tiny.en {model}", send, args.requests,
                                               args.clients, meter, warmup=args.clients))
            after = histogram(base_url, "stt_requests_per_window", model)
            packing_seen[model] = (after[1] - before[1]) / max(after[0] - before[0], 1)

        async def wer_round(model: str) -> list[tuple[str, str]]:
            references = [name for name in FIXTURE_TRANSCRIPTS for _ in range(args.wer_copies)]
            async with httpx.AsyncClient(base_url=base_url, timeout=300) as http:
                responses = await asyncio.gather(*(
                    http.post("/v1/audio/transcriptions", data={"model": model, "response_format": "json"},
                              files={"file": (name, (FIXTURES / name).read_bytes())}) for name in references))
            return [(name, response.json()["text"]) for name, response in zip(references, responses)]

        for model in ("packed", "unpacked"):
            wer_texts[model] = asyncio.run(wer_round(model))

        started = time.perf_counter()
        long = httpx.post(f"{base_url}/v1/audio/transcriptions", files={"file": ("ten-minutes.wav", long_wav)},
                          data={"model": "packed", "response_format": "json"}, timeout=600)
        fleet_long = time.perf_counter() - started
        long.raise_for_status()
    local = in_process(cores, clips, args.requests, long_wav)

    audio_seconds = sum(seconds[names[i % len(names)]] for i in range(args.requests))
    for model, result in results.items():
        print(result.line())
        print(f"      {audio_seconds / result.seconds:6.1f} s of audio per second; requests per window "
              f"{packing_seen[model]:.2f}")
    local_rps = args.requests / local["one_by_one"]
    print(f"  {'in-process WhisperModel.transcribe':<34} {local_rps:8.2f} req/s   (one request after another)")
    gain = results["packed"].rps / results["unpacked"].rps
    print(f"  packing gain (on / off): {gain:5.2f}x   (target >= 2.5x)")
    print(f"  packing on / in-process one by one: {results['packed'].rps / local_rps:5.2f}x;   "
          f"off / in-process: {results['unpacked'].rps / local_rps:5.2f}x")
    print(f"  in-process packed batch of 8 clips: {local['packed_batch']:.2f} s, of which aligning words "
          f"{local['aligning']:.2f} s ({100 * local['aligning'] / local['packed_batch']:.0f}%)")

    print(f"\nword error rate, tiny.en, each fixture sent {args.wer_copies} times at once")
    summary = {}
    for model in ("packed", "unpacked"):
        references = [normalise(FIXTURE_TRANSCRIPTS[name]) for name, _ in wer_texts[model]]
        hypotheses = [normalise(text) for _, text in wer_texts[model]]
        summary[model] = jiwer.wer(references, hypotheses)
    print(f"  {'clip':<30} {'packed':<48} unpacked")
    for (name, packed), (_, unpacked) in zip(wer_texts["packed"][:: args.wer_copies],
                                             wer_texts["unpacked"][:: args.wer_copies]):
        reference = normalise(FIXTURE_TRANSCRIPTS[name])
        print(f"  {name:<30} {jiwer.wer(reference, normalise(packed)):4.2f} {normalise(packed)[:42]:<43} "
              f"{jiwer.wer(reference, normalise(unpacked)):4.2f} {normalise(unpacked)[:42]}")
    print(f"  WER over all: packed {summary['packed']:.3f}, unpacked {summary['unpacked']:.3f} "
          f"(target: packed <= unpacked + 0.01: {'met' if summary['packed'] <= summary['unpacked'] + 0.01 else 'MISSED'})")

    ratio = local["pipeline"] / fleet_long
    print(f"\n10-minute file ({LONG_SECONDS} s of fixtures with pauses), one request:")
    print(f"  fleet (packing on)                 {fleet_long:6.1f} s   real-time factor {fleet_long / LONG_SECONDS:.4f}")
    print(f"  in-process BatchedInferencePipeline {local['pipeline']:5.1f} s   real-time factor "
          f"{local['pipeline'] / LONG_SECONDS:.4f}")
    print(f"  pipeline time / fleet time: {ratio:.2f}   (target >= 0.9)")
    print(f"  words: fleet {len(long.json()['text'].split())}, pipeline {len(local['pipeline_text'].split())}")


if __name__ == "__main__":
    main()
