"""Capabilities whose results are presented in more than one way (chosen at request time and
kept on the job, so ``GET /v1/jobs/{id}/result`` answers like the original request would)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Response

from api.audio_rendering import render_audio_result
from api.transcripts import render_transcription
from speechmodels.registry import (
    AUDIO_CONVERSION,
    SPEECH_SYNTHESIS,
    TRANSCRIPTION,
    VOICE_CONVERSION,
)
from workers.jobs import JobRecord

# (record, its binary result if it has one) -> the response
RENDERERS: dict[str, Callable[[JobRecord, bytes | None], Response]] = {
    TRANSCRIPTION: render_transcription,
    SPEECH_SYNTHESIS: render_audio_result,
    AUDIO_CONVERSION: render_audio_result,
    VOICE_CONVERSION: render_audio_result,
}
