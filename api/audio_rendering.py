"""A finished job whose result is audio (speech, converted audio) as the caller asked for it:
raw audio bytes (OpenAI calls) or HSE's envelope with the audio in base64."""

from __future__ import annotations

import base64

from fastapi import Response
from fastapi.responses import JSONResponse

from jobcontract.record import JobRecord


def render_audio_result(record: JobRecord, data: bytes | None) -> Response:
    result = record.result or {}
    if (record.render or {}).get("dialect") == "hse":
        return JSONResponse({"id": record.id, "model": record.model, "created": int(record.created_at),
                             "data": base64.b64encode(data or b"").decode("ascii")})
    return Response(content=data or b"", media_type=result.get("content_type", "application/octet-stream"),
                    headers={"X-Job-Id": record.id})
