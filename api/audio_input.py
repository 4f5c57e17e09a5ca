"""Base64 audio fields: decoded once in the API, checked for being real audio (a header
probe, not a decode) and for duration, so bad input is refused before it is queued."""

from __future__ import annotations

import base64
import binascii
import json
import math

from anyio import to_thread

from api.errors import APIError
from speechmodels import audio

try:  # SIMD base64 where installed: a 10 s WAV's 430 KB field in 0.02 ms instead of 1 ms
    from pybase64 import b64decode as _b64decode
except ImportError:
    def _b64decode(encoded: str, validate: bool = True) -> bytes:
        # base64.b64decode(validate=True) runs a regex over the whole field before decoding it
        # (a 430 KB field: 0.71 ms); binascii's strict mode refuses the same inputs while it
        # decodes (0.54 ms)
        return binascii.a2b_base64(encoded, strict_mode=validate)

#: base64 fields up to this size are decoded on the event loop (about 1.5 ms at the limit, less
#: than the thread hop costs under load); larger ones in a thread: tens of MB must not stall it
INLINE_BASE64_CHARS = 512 * 1024
#: formats whose header libsndfile reads itself; anything else may need FFmpeg (PyAV), which may decode
_LIBSNDFILE_MAGIC = (b"RIFF", b"RF64", b"fLaC", b"OggS")


async def read_audio(encoded: str, max_seconds: float, param: str = "input_audio") -> bytes:
    """Decode and check a base64 audio field: a small one that libsndfile can probe on the
    event loop, anything else in a thread."""
    if len(encoded) <= INLINE_BASE64_CHARS:
        data = _decode_base64(encoded, param)
        # a header libsndfile does not read goes to FFmpeg, which must not run on the event loop
        info = audio.probe_header(data, param=param) if data[:4] in _LIBSNDFILE_MAGIC else None
        if info is not None:
            return _within_limit(data, info, max_seconds, param)
        return await to_thread.run_sync(_check_audio, data, max_seconds, param)
    return await to_thread.run_sync(_read_audio, encoded, max_seconds, param)


async def check_audio(data: bytes, max_seconds: float, param: str = "file") -> bytes:
    """The same checks for audio that arrived as bytes (a multipart upload)."""
    return await to_thread.run_sync(_check_audio, data, max_seconds, param)


def _read_audio(encoded: str, max_seconds: float, param: str) -> bytes:
    return _check_audio(_decode_base64(encoded, param), max_seconds, param)


def _decode_base64(encoded: str, param: str) -> bytes:
    if encoded.startswith("data:"):  # tolerate data URLs: data:audio/wav;base64,....
        encoded = encoded.partition(",")[2]
    try:
        return _b64decode(encoded, validate=True)  # either refuses what the other does (binascii.Error, ValueError)
    except (binascii.Error, ValueError):
        raise APIError(400, f"{param} is not valid base64", reason="invalid_base64", param=param) from None


def _check_audio(data: bytes, max_seconds: float, param: str) -> bytes:
    return _within_limit(data, audio.probe(data, param=param), max_seconds, param)  # InputError -> 400


def _within_limit(data: bytes, info: audio.AudioInfo, max_seconds: float, param: str) -> bytes:
    if info.duration_s is not None and info.duration_s > max_seconds:
        raise APIError(413, f"{param} is {info.duration_s:.1f}s long; the limit is {max_seconds:g}s",
                       reason="audio_too_long", param=param)
    return data


def read_embedding(encoded: str, param: str) -> bytes:
    """A base64 speaker or tone-colour embedding (little-endian float32), checked for shape;
    whether its size fits the model is the model's to say."""
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise APIError(400, f"{param} is not valid base64", reason="invalid_base64", param=param) from None
    if not data or len(data) % 4:
        raise APIError(400, f"{param} must be little-endian float32 values", reason="invalid_embedding", param=param)
    return data


def read_vad_segments(value: str, max_seconds: float, param: str = "input_vad_data") -> bytes:
    """``input_vad_data``: the speech segments of the reference clip, as JSON (or base64 of
    JSON) in seconds: ``/v1/audio/vad``'s answer with ``return_seconds`` (``timestamps``), or
    HSE's faster-whisper form (``segments``, itself possibly base64 JSON). Returned in the
    form a toolchain's VAD step hands on: JSON ``[[start, end], ...]``. Times must be finite,
    within the clip's allowed length, and ``start <= end``; no segments at all is a 400 too
    (there is no speech to take a voice from)."""
    def bad(why: str, reason: str = "invalid_vad_data") -> APIError:
        return APIError(400, f"{param} {why}; send /v1/audio/vad's answer (return_seconds: true) as JSON",
                        reason=reason, param=param)

    document = _json_or_base64_json(value)
    if isinstance(document, dict):
        document = document.get("timestamps", document.get("segments"))
        if isinstance(document, str):
            document = _json_or_base64_json(document)
    if not isinstance(document, list):
        raise bad("is not JSON with timestamps or segments")
    segments = []
    for item in document:
        start, end = (item.get("start"), item.get("end")) if isinstance(item, dict) else (item[:2] if isinstance(
            item, list) and len(item) >= 2 else (None, None))
        if not all(_is_time(x, max_seconds) for x in (start, end)) or end < start:
            raise bad(f"has a segment without times 0 <= start <= end <= {max_seconds:g} s")
        segments.append([float(start), float(end)])
    if not segments:
        raise bad("has no speech segments: the reference clip has no speech", reason="no_speech")
    return json.dumps(segments).encode()


def _is_time(value, max_seconds: float) -> bool:
    # bool is an int to Python; ints too large for a float, NaN and infinities are refused too
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value)) and 0 <= value <= max_seconds
    except OverflowError:
        return False


def _json_or_base64_json(value: str):
    for attempt in (lambda: value, lambda: base64.b64decode(value, validate=True).decode()):
        try:
            return json.loads(attempt())
        except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
            continue
    return None
