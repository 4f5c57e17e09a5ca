"""A finished diarization as the caller asked: JSON ``{duration, segments}`` or RTTM."""

from __future__ import annotations

import re

from fastapi import Response
from fastapi.responses import JSONResponse, PlainTextResponse

from jobcontract.record import JobRecord


def rttm(segments: list[dict], file_id: str) -> str:
    """NIST's RTTM: ``SPEAKER <file> 1 <start> <duration> <NA> <NA> <speaker> <NA> <NA>`` per turn
    (fields are space-separated, so a name's spaces become underscores)."""
    def token(text: str) -> str:
        return re.sub(r"\s+", "_", text.strip())

    return "".join(f"SPEAKER {token(file_id) or 'audio'} 1 {segment['start']:.3f} "
                   f"{segment['end'] - segment['start']:.3f} <NA> <NA> {token(segment['speaker'])} <NA> <NA>\n"
                   for segment in segments)


def render_diarization(record: JobRecord, data: bytes | None = None) -> Response:
    result, render = record.result or {}, record.render or {}
    if render.get("format") == "rttm":
        return PlainTextResponse(rttm(result["segments"], render.get("file") or record.id), media_type="text/x-rttm")
    return JSONResponse({"duration": result["duration"], "segments": result["segments"]})
