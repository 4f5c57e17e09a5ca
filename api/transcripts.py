"""A stored transcription rendered as the caller asked: HSE's JSON, or OpenAI's json, text,
srt, vtt and verbose_json."""

from __future__ import annotations

import re
from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse, PlainTextResponse

from jobcontract.record import JobRecord


def _clock(seconds: float, separator: str) -> str:
    milliseconds = max(0, round(seconds * 1000))
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def subtitles(segments: list[dict], kind: str) -> str:
    """SubRip (numbered cues, comma before milliseconds) or WebVTT (header, dot)."""
    cues = []
    for number, segment in enumerate(segments, start=1):
        separator = "," if kind == "srt" else "."
        timing = f"{_clock(segment['start'], separator)} --> {_clock(segment['end'], separator)}"
        text = segment["text"].strip()
        cues.append(f"{number}\n{timing}\n{text}\n" if kind == "srt" else f"{timing}\n{text}\n")
    body = "\n".join(cues)
    return body if kind == "srt" else f"WEBVTT\n\n{body}"


SEGMENT_KEYS = ("id", "seek", "start", "end", "text", "tokens", "avg_logprob", "compression_ratio", "no_speech_prob",
                "words", "temperature")


def whisper_segment(segment: dict[str, Any]) -> dict[str, Any]:
    """A segment as faster-whisper's ``Segment`` has it, which HSE returns as its
    ``timestamps`` items; ``words`` (``start, end, word, probability``) when word timing ran."""
    words = segment.get("words")
    return {"id": segment["id"], "seek": segment.get("seek", 0), "start": segment["start"], "end": segment["end"],
            "text": segment["text"], "tokens": segment["tokens"], "avg_logprob": segment["avg_logprob"],
            "compression_ratio": segment["compression_ratio"], "no_speech_prob": segment["no_speech_prob"],
            "words": None if words is None else [{key: word[key] for key in ("start", "end", "word", "probability")}
                                                 for word in words],
            "temperature": segment["temperature"]}


# OpenAI's verbose_json words carry no punctuation ("Americans", not "Americans,"); faster-whisper
# attaches it to the word before, and whether it writes "so," or "so" varies with decoding.
_EDGE_PUNCTUATION = re.compile(r"^[^\w']+|[^\w']+$")


def _openai_words(segments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    words = []
    for segment in segments:
        for word in segment.get("words") or []:
            text = _EDGE_PUNCTUATION.sub("", word["word"].strip())
            if text:  # a token that was only punctuation is not a word
                words.append({"word": text, "start": word["start"], "end": word["end"]})
    return words


def _verbose(record: JobRecord, result: dict[str, Any], granularities: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"task": result["task"], "language": result["language"], "duration": result["duration"],
                            "text": result["text"]}
    if "segment" in granularities or not granularities:
        body["segments"] = [
            {key: segment[key] for key in ("id", "start", "end", "text", "tokens", "temperature", "avg_logprob",
                                            "compression_ratio", "no_speech_prob")} | {"seek": 0}
            for segment in result["segments"]]
    if "word" in granularities:
        body["words"] = _openai_words(result["segments"])
    return body


def render_transcription(record: JobRecord, data: bytes | None = None) -> Response:
    result, render = record.result, record.render or {}
    if render.get("dialect") == "hse_vad":  # /v1/audio/vad on a Whisper model, as HSE answers it
        return JSONResponse({"id": record.id, "model": record.model, "created": int(record.created_at),
                             "speech_activity": bool(result["segments"]),
                             "timestamps": [whisper_segment(segment) for segment in result["segments"]]
                             if render.get("get_timestamps") else None})
    if render.get("dialect") == "hse":
        body = {"id": record.id, "model": record.model, "created": int(record.created_at), "text": result["text"],
                "language": result["language"] if render.get("get_language") else None,
                "timestamps": [whisper_segment(segment) for segment in result["segments"]]
                if render.get("get_timestamps") else None}
        return JSONResponse(body)
    response_format = render.get("format", "json")
    if response_format == "text":
        return PlainTextResponse(result["text"])
    if response_format in ("srt", "vtt"):
        media = "application/x-subrip" if response_format == "srt" else "text/vtt"
        return PlainTextResponse(subtitles(result["segments"], response_format), media_type=media)
    if response_format == "diarized_json":  # already in OpenAI's shape (the speaker attribution step's)
        return JSONResponse(result)
    if response_format == "verbose_json":
        return JSONResponse(_verbose(record, result, render.get("granularities", [])))
    return JSONResponse({"text": result["text"]})
