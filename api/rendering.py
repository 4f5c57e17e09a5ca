"""Capabilities whose results are presented in more than one way (chosen at request time and
kept on the job, so ``GET /v1/jobs/{id}/result`` answers like the original request would)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Response

from api.transcripts import render_transcription
from speechmodels.registry import TRANSCRIPTION
from workers.jobs import JobRecord

RENDERERS: dict[str, Callable[[JobRecord], Response]] = {
    TRANSCRIPTION: render_transcription,
}
