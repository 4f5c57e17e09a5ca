"""Capabilities whose results are presented in more than one way (chosen at request time and
kept on the job, so ``GET /v1/jobs/{id}/result`` answers like the original request would)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Response

from api.speech_rendering import render_speech
from api.transcripts import render_transcription
from speechmodels.registry import SPEECH_SYNTHESIS, TRANSCRIPTION
from workers.jobs import JobRecord

# (record, its binary result if it has one) -> the response
RENDERERS: dict[str, Callable[[JobRecord, bytes | None], Response]] = {
    TRANSCRIPTION: render_transcription,
    SPEECH_SYNTHESIS: render_speech,
}
