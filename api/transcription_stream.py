"""Streamed transcription (``stream=true``): a long file's pieces are the parts of one job on
the model's queue, so every worker of the model takes pieces of it, and each piece's text goes
out as a ``transcript.text.delta`` Server-Sent Event as soon as it (and every piece before it)
is transcribed; ``transcript.text.done`` ends the stream with the whole text and its ``usage``.
The job's join step assembles the same pieces (times shifted), so the job's result is the
whole transcript too.

Where the file is cut is a cheap rule, run here in the API, which stays model-free: pieces of
at most ``piece_s`` seconds, each ending in the last of the quietest 50 ms frames of its second
half (the latest pause, so pieces stay long: every piece is one padded 30 s Whisper window). The
first pieces are shorter (``first_piece_s``, doubling up to ``piece_s``): the first delta waits
for the first piece's batch, and a short piece is ready (decoded, its features made) before the
long ones, so it starts a batch of its own and its text is out after one small window. A VAD
step on a worker would find better cuts, but the plan's parts are fixed when the job is
recorded, so it would have to be a job of its own before this one, a whole queue round trip
and a pass over the whole file before the first piece could start; the worker's Whisper family
runs its own VAD inside each piece anyway (faster-whisper's Silero), so a cut in a quiet
stretch loses nothing, and a cut inside a word (a piece of unbroken speech) costs at most that
word.

The first piece also runs first as a job of its own, and the file's job is queued only once
that job is done: measured, the first piece alone in its batch still took 1.9 s instead of
0.6 s while the worker read and prepared the file's other pieces beside it. The file's job is
recorded with that piece's output as its own first part, which no worker runs again: its
result is the whole transcript and says exactly what the stream said (decoded again beside
the file's other pieces, the first piece's text could differ: packed windows).

The response starts once the first piece is transcribed, so a request that fails there
(English-only model asked to translate, undecodable audio) still gets its 4xx envelope.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator

import numpy as np
from anyio import to_thread
from fastapi.responses import StreamingResponse
from loguru import logger

from api.dispatch import JobDispatcher, Preference
from api.errors import APIError, error_body
from api.part_stream import PartReader, sse_event
from jobcontract.payload import JobInput
from jobcontract.plan import JobPlan
from speechmodels import audio
from speechmodels.encoding import encode_audio
from speechmodels.registry import TRANSCRIPTION

SAMPLE_RATE = 16_000
FRAME = SAMPLE_RATE // 20  # 50 ms: the resolution of the cut


QUIET = 2.0  # a frame at most this many times the quietest frame's energy is as good a place to cut
FLOOR = FRAME * 1e-6  # energy of a frame at -60 dBFS RMS: below it every frame is silence


def cut_points(samples: np.ndarray, piece_s: float, first_piece_s: float | None = None) -> list[int]:
    """Where to cut: sample offsets (the last is the end). The first piece is at most
    ``first_piece_s`` long, each next one at most twice the one before, up to ``piece_s``;
    each cut is at the last of the quietest frames in the second half of its piece."""
    ends: list[int] = []
    start = 0
    limit = min(first_piece_s or piece_s, piece_s)
    while True:
        longest = max(int(limit * SAMPLE_RATE), 2 * FRAME)
        if len(samples) - start <= longest:
            break
        lowest, highest = start + longest // 2, start + longest
        frames = samples[lowest:highest][: (highest - lowest) // FRAME * FRAME].reshape(-1, FRAME)
        energy = np.einsum("ij,ij->i", frames, frames)
        quiet = np.flatnonzero(energy <= QUIET * energy.min() + FLOOR)
        cut = lowest + int(quiet[-1]) * FRAME + FRAME // 2
        ends.append(cut)
        start = cut
        limit = min(2 * limit, piece_s)
    ends.append(len(samples))
    return ends


def cut_audio(data: bytes, piece_s: float, first_piece_s: float, max_seconds: float,
              param: str = "file") -> list[bytes]:
    """The audio decoded to 16 kHz mono and cut into consecutive pieces (FLAC) that tile it."""
    samples = audio.decode(data, SAMPLE_RATE, param=param, max_seconds=max_seconds)
    pieces, start = [], 0
    for end in cut_points(samples, piece_s, first_piece_s):
        pieces.append(encode_audio(samples[start:end], SAMPLE_RATE, "flac"))
        start = end
    return pieces


async def _first_piece_done(dispatcher: JobDispatcher, alone: PartReader) -> dict[int, tuple[bytes, dict]] | None:
    """The first piece's job's output and progress, as the file's job's first part (None if
    its output is gone already: the file's job then transcribes the piece itself)."""
    output = await dispatcher.store.step_output(alone.job_id, 0)
    record = await dispatcher.store.get(alone.job_id)
    if output is None or record is None or not record.steps or record.steps[0].get("status") != "succeeded":
        return None
    return {0: (output, {**record.steps[0], "from_job": alone.job_id})}


async def stream_transcription(dispatcher: JobDispatcher, model_name: str, data: bytes, request_fields: dict,
                               preference: Preference, render: dict, callback_url: str | None) -> StreamingResponse:
    settings = dispatcher.settings
    accepted = time.monotonic()
    pieces = await to_thread.run_sync(cut_audio, data, settings.transcription_stream_piece_s,
                                      settings.transcription_stream_first_piece_s, settings.max_audio_seconds)
    queued = dataclasses.replace(preference, respond_async=True)
    wait_s = dispatcher.wait_budget(preference)

    async def submit(parts: list[bytes], callback: str | None,
                     done_steps: dict[int, tuple[bytes, dict]] | None = None) -> PartReader:
        plan = JobPlan.build(model_name, TRANSCRIPTION, [(model_name, TRANSCRIPTION)], parts=len(parts), streamed=True)
        job_input = JobInput(request_fields, parts=[{"audio": piece} for piece in parts])
        record = await dispatcher.submit(plan, job_input, queued, render, callback, done_steps)
        return PartReader(dispatcher, record.id, plan, wait_s, noun="piece")

    first, done = None, None
    if len(pieces) > 1:
        # a job that fails on its first piece is still a 4xx here
        alone = await submit(pieces[:1], None)
        first = await alone.part(0)
        done = await _first_piece_done(dispatcher, alone)
    reader = await submit(pieces, callback_url, done)
    if first is None:
        first = await reader.part(0)
    logger.info("job {}: first transcript piece after {:.3f}s ({} pieces)", reader.job_id,
                time.monotonic() - accepted, len(pieces))

    async def events() -> AsyncIterator[bytes]:
        texts: list[str] = []
        seconds = 0.0
        try:
            for index in range(len(pieces)):
                piece = first if index == 0 else await reader.part(index)
                seconds += piece.duration
                text = piece.text.strip()
                if text:
                    # the deltas concatenate to the done event's text (pieces joined by a space)
                    yield sse_event({"type": "transcript.text.delta", "delta": (" " if texts else "") + text})
                    texts.append(text)
        except APIError as exc:
            yield sse_event({"type": "error", "error": error_body(exc.status, exc.message, reason=exc.reason,
                                                                  param=exc.param, job_id=reader.job_id)})
            return
        yield sse_event({"type": "transcript.text.done", "text": " ".join(texts),
                         "usage": {"type": "duration", "seconds": round(seconds, 3)}})

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"X-Job-Id": reader.job_id, "Cache-Control": "no-store"})
