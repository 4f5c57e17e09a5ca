"""Streaming speech: a speech job's sentences go out in order, each as soon as its part has
finished, while later sentences are still being synthesised on other workers.

``stream_format: "audio"`` (or HSE's ``output_options.stream``) sends chunked audio; ``"sse"``
sends Server-Sent Events, ``speech.audio.delta`` with base64 audio then ``speech.audio.done``.
The response starts only once the first sentence is ready, so a request that fails (an
unknown voice, a text with nothing to pronounce) still gets its 4xx in the error envelope.
"""

from __future__ import annotations

import base64
import dataclasses
import time
from collections.abc import AsyncIterator

from fastapi.responses import StreamingResponse
from loguru import logger

from api.dispatch import JobDispatcher, Preference
from api.errors import APIError, error_body
from api.part_stream import PartReader, sse_event
from jobcontract.payload import JobInput
from jobcontract.plan import JobPlan
from speechmodels.audio import resample
from speechmodels.encoding import AUDIO_FORMATS, encode_audio, streaming_wav_header
from speechmodels.tts import SynthesizedSpeech, sentence_piece

STREAMABLE_FORMATS = ("pcm", "wav", "mp3", "aac")


class StreamAborted(Exception):
    """Raised inside a started audio body to abort it (the server drops the connection)."""


@dataclasses.dataclass
class ChunkEncoder:
    """Each sentence as a self-contained piece of the stream: faded at its edges (no clicks
    at the seams), a pause before every sentence but the first, in the response format."""

    format_name: str
    sample_rate: int | None  # None: the model's own

    def header(self, first: SynthesizedSpeech) -> bytes:
        return streaming_wav_header(self.sample_rate or first.sample_rate) if self.format_name == "wav" else b""

    def chunk(self, speech: SynthesizedSpeech, first: bool) -> bytes:
        samples = sentence_piece(speech.samples, speech.sample_rate, first)
        rate = self.sample_rate or speech.sample_rate
        samples = resample(samples, speech.sample_rate, rate)
        # a wav stream is its header followed by raw 16-bit pcm
        return encode_audio(samples, rate, "pcm" if self.format_name == "wav" else self.format_name)


async def stream_speech(dispatcher: JobDispatcher, plan: JobPlan, job_input: JobInput, preference: Preference,
                        render: dict, sse: bool, callback_url: str | None) -> StreamingResponse:
    output = job_input.output
    if output.format not in STREAMABLE_FORMATS:
        raise APIError(400, f"{output.format} cannot be streamed sentence by sentence; stream one of "
                       f"{list(STREAMABLE_FORMATS)} or ask without streaming", reason="unsupported_stream_format",
                       param="response_format")
    parts = len(plan.part_steps)
    accepted = time.monotonic()
    record = await dispatcher.submit(plan, job_input, dataclasses.replace(preference, respond_async=True), render,
                                     callback_url)
    reader = PartReader(dispatcher, record.id, plan, dispatcher.wait_budget(preference), noun="sentence")
    first = await reader.part(0)
    logger.info("job {}: first audio after {:.3f}s ({} sentences)", record.id, time.monotonic() - accepted, parts)
    encoder = ChunkEncoder(output.format, output.sample_rate)
    headers = {"X-Job-Id": record.id, "Cache-Control": "no-store"}

    async def sentences() -> AsyncIterator[tuple[bytes, float]]:
        for index in range(parts):
            speech = first if index == 0 else await reader.part(index)
            data = encoder.chunk(speech, first=index == 0)
            yield (encoder.header(first) + data if index == 0 else data), speech.seconds

    async def audio_body() -> AsyncIterator[bytes]:
        try:
            async for data, _ in sentences():
                yield data
        except APIError as exc:
            # the status line is gone; ending the body normally would pass a cut-short file off as
            # whole, so the chunked body is aborted (no final chunk): clients see an error
            logger.warning("stream of job {} failed midway: {}", record.id, exc.message)
            raise StreamAborted(exc.message) from None

    async def sse_body() -> AsyncIterator[bytes]:
        seconds = 0.0
        try:
            async for data, duration in sentences():
                seconds += duration
                yield sse_event({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode("ascii")})
        except APIError as exc:
            yield sse_event({"type": "error", "error": error_body(exc.status, exc.message, reason=exc.reason,
                                                                  param=exc.param, job_id=record.id)})
            return
        yield sse_event({"type": "speech.audio.done", "job_id": record.id, "sentences": parts,
                         "audio_seconds": round(seconds, 3)})

    if sse:
        return StreamingResponse(sse_body(), media_type="text/event-stream", headers=headers)
    return StreamingResponse(audio_body(), media_type=AUDIO_FORMATS[output.format].content_type, headers=headers)
