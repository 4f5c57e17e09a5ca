"""Diarization benchmark, from one run:

1. Conversations built from the real recordings in ../shared/fixtures/audio/ (speakers aew,
   axb, JFK and the German speaker; 2 to 4 speakers; turns of 0.8 to 10 s with short gaps, a
   third of them with the exercise bike mixed in), each with its reference RTTM, sent through
   the fleet (`speechfleet serve`: Silero VAD, the GE2E encoder, the clustering step) to
   POST /v1/audio/diarization. Prints the diarization error rate (pyannote.metrics; no overlap
   in these conversations), with no collar and with the usual 0.25 s collar, the share of
   conversations whose speaker count was right, and, for conversations sent with two known
   speakers' reference clips (never audio the conversation also uses), how many of those
   speakers got their own name. Targets: DER <= 10 %, count right on >= 90 %.
2. Windows embedded per second by the encoder in-process, 16 requests' windows in one batched
   call against one request at a time.

    .venv/bin/python bench/bench_diarization.py [--conversations 30] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import time
import warnings

import httpx
import numpy as np
from harness import FIXTURES, Cores, fleet

from speechmodels import ModelConfig, audio, load_model

warnings.filterwarnings("ignore")  # pyannote's optional-dependency notices

SR = 16_000
CONFIG = [
    {"name": "silero-vad", "model": "package:silero_vad", "model_type": "SileroVAD", "max_batch_size": 16,
     "max_wait_ms": 5},
    {"name": "harmonyspeech-encoder", "model": "package:resemblyzer", "model_type": "HarmonySpeechEncoder",
     "max_batch_size": 16, "max_wait_ms": 10},
    {"name": "speaker-diarizer", "model": "builtin", "model_type": "SpeakerDiarizer", "max_batch_size": 8,
     "max_wait_ms": 5},
]


def load_speakers(vad) -> dict[str, list[np.ndarray]]:
    """Each speaker's utterances, trimmed to their speech."""
    files = {"aew": [f"cmu_arctic_us_aew_a000{i}.wav" for i in (1, 2, 3)],
             "axb": [f"cmu_arctic_us_axb_a000{i}.wav" for i in (4, 5, 6)],
             "jfk": ["jfk.flac"], "german": ["german_speech_8000.wav"]}
    speakers = {}
    for speaker, names in files.items():
        clips = []
        for name in names:
            samples = audio.decode((FIXTURES / name).read_bytes(), SR)
            speech = vad.infer({"audio": audio.encode_wav(samples, SR), "get_timestamps": True}).timestamps
            clips.append(np.concatenate([samples[start:end] for start, end in speech]))
        speakers[speaker] = clips
    # JFK's one recording: its first 6 s can be his reference, the rest his turns
    jfk = speakers["jfk"][0]
    speakers["jfk"] = [jfk[6 * SR:]]
    return speakers, {"aew": speakers["aew"][2], "axb": speakers["axb"][2], "jfk": jfk[:6 * SR]}


def conversation(rng: random.Random, speakers: dict, references: dict, with_known: bool):
    """(samples, reference turns [(start, end, speaker)], speakers present, known names)."""
    present = rng.sample(list(speakers), rng.randint(2, 4))
    known = [s for s in present if s in references][:2] if with_known else []
    pools = {s: (speakers[s][:2] if s in known and s in ("aew", "axb") else speakers[s]) for s in present}
    order = present + [rng.choice(present) for _ in range(rng.randint(2, 6))]
    pieces, turns, t = [], [], 0.0
    for speaker in order:
        clip = rng.choice(pools[speaker])
        length = rng.uniform(0.8, min(10.0, len(clip) / SR))
        start = rng.uniform(0, len(clip) / SR - length)
        turn = clip[int(start * SR):int((start + length) * SR)]
        gap = np.zeros(int(rng.uniform(0.2, 0.8) * SR), np.float32)
        pieces += [gap, turn]
        t += len(gap) / SR
        turns.append((t, t + len(turn) / SR, speaker))
        t += len(turn) / SR
    samples = np.concatenate([*pieces, np.zeros(SR // 2, np.float32)])
    if rng.random() < 1 / 3:
        noise = audio.decode((FIXTURES / "noise_exercise_bike.wav").read_bytes(), SR)
        noise = np.resize(noise, samples.size)
        samples = samples + 0.3 * noise * np.sqrt(np.mean(samples ** 2)) / (np.sqrt(np.mean(noise ** 2)) + 1e-9)
    return np.clip(samples, -1, 1).astype(np.float32), turns, set(order), known


async def diarize_all(base: str, conversations: list, references: dict, clients: int = 8) -> list[dict]:
    limit = asyncio.Semaphore(clients)

    async def one(http: httpx.AsyncClient, item) -> dict:
        samples, _, _, known = item
        body = {"input_audio": base64.b64encode(audio.encode_wav(samples, SR)).decode(),
                "known_speaker_names": known,
                "known_speaker_references": [base64.b64encode(audio.encode_wav(references[name], SR)).decode()
                                             for name in known]}
        async with limit:
            response = await http.post("/v1/audio/diarization", json=body)
        response.raise_for_status()
        return response.json()

    async with httpx.AsyncClient(base_url=base, timeout=600) as http:
        return await asyncio.gather(*(one(http, item) for item in conversations))


def score(conversations: list, answers: list[dict]) -> None:
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    plain, collared = DiarizationErrorRate(), DiarizationErrorRate(collar=0.5)  # 0.25 s each side
    counted = named = known_total = 0
    for (_, turns, present, known), answer in zip(conversations, answers):
        reference, hypothesis = Annotation(), Annotation()
        for start, end, speaker in turns:
            reference[Segment(start, end)] = speaker
        for segment in answer["segments"]:
            hypothesis[Segment(segment["start"], segment["end"])] = segment["speaker"]
        plain(reference, hypothesis)
        collared(reference, hypothesis)
        counted += len({segment["speaker"] for segment in answer["segments"]}) == len(present)
        for name in known:  # the hypothesis label covering most of this speaker's turns
            overlap: dict[str, float] = {}
            for start, end, speaker in turns:
                if speaker != name:
                    continue
                for segment in answer["segments"]:
                    shared = min(end, segment["end"]) - max(start, segment["start"])
                    if shared > 0:
                        overlap[segment["speaker"]] = overlap.get(segment["speaker"], 0.0) + shared
            named += bool(overlap) and max(overlap, key=overlap.get) == name
            known_total += 1
    total = len(conversations)
    print(f"  DER {abs(plain):.1%} (no collar), {abs(collared):.1%} (0.25 s collar)   target <= 10%")
    print(f"  speaker count right on {counted}/{total} conversations ({counted / total:.0%})   target >= 90%")
    print(f"  known speakers named right: {named}/{known_total}")


def windows_per_second(speakers: dict, conversations: list, vad) -> None:
    encoder = load_model(ModelConfig(name="enc", model="package:resemblyzer", model_type="HarmonySpeechEncoder"))
    items = []
    for samples, _, _, _ in conversations[:16]:
        wav = audio.encode_wav(samples, SR)
        speech = vad.infer({"audio": wav, "get_timestamps": True, "return_seconds": True}).timestamps
        items.append(encoder.prepare({"audio": wav, "vad_segments": json.dumps(speech).encode(),
                                      "speaker_windows": {}}))
    windows = sum(len(item.windows) for item in items)
    encoder.infer_batch(items[:2])  # warm
    started = time.perf_counter()
    encoder.infer_batch(items)
    batched = time.perf_counter() - started
    started = time.perf_counter()
    for item in items:
        encoder.infer_batch([item])
    single = time.perf_counter() - started
    print(f"  {windows} windows of 16 requests: {windows / batched:.0f} windows/s batched (16 requests per call), "
          f"{windows / single:.0f} windows/s one request per call ({single / batched:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    vad = load_model(ModelConfig(name="vad", model="package:silero_vad", model_type="SileroVAD"))
    speakers, references = load_speakers(vad)
    rng = random.Random(args.seed)
    conversations = [conversation(rng, speakers, references, with_known=index % 3 == 0)
                     for index in range(args.conversations)]
    seconds = sum(len(item[0]) for item in conversations) / SR
    print(f"1. {len(conversations)} conversations, {seconds:.0f} s of audio, through the fleet")
    with fleet(CONFIG, Cores.choose(shared=True)) as (base, _):
        started = time.perf_counter()
        answers = asyncio.run(diarize_all(base, conversations, references))
        elapsed = time.perf_counter() - started
    print(f"  {elapsed:.1f} s for all ({seconds / elapsed:.1f} s of audio per second, 8 clients)")
    score(conversations, answers)
    print("2. the encoder's windows, in-process")
    windows_per_second(speakers, conversations, vad)


if __name__ == "__main__":
    main()
