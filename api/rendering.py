"""How a finished job is presented, by its capability's ``render`` kind (chosen at request
time and kept on the job, so ``GET /v1/jobs/{id}/result`` answers like the original request
would). A kind not listed here is the plain envelope plus the result's fields."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Response

from api.audio_rendering import render_audio_result
from api.diarization_rendering import render_diarization
from api.transcripts import render_transcription
from jobcontract.record import JobRecord

# (record, its binary result if it has one) -> the response
RENDERERS: dict[str, Callable[[JobRecord, bytes | None], Response]] = {
    "audio": render_audio_result,
    "transcript": render_transcription,
    "diarization": render_diarization,
}
