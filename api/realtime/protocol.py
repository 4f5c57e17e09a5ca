"""The GA Realtime transcription session's shapes (``openai.types.realtime``): the session
configuration a ``session.update`` (or a client secret) sets, the server events, and the
``error`` event. Only ``type: "transcription"`` sessions are served."""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from typing import Any

OPENAI_TRANSCRIPTION_MODELS = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe", "gpt-transcribe",
                               "gpt-live-transcribe", "gpt-realtime-whisper", "gpt-4o-mini-transcribe-2025-12-15",
                               "gpt-4o-transcribe-diarize")
DEFAULT_TURN_DETECTION = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                          "silence_duration_ms": 500}
# semantic_vad is served by server VAD: no model here judges whether a sentence is finished, so
# eagerness only sets how much silence ends a turn ("auto" is "medium", as OpenAI defines it)
SEMANTIC_SILENCE_MS = {"high": 300, "medium": 600, "auto": 600, "low": 1200}
SHOWN_FIELDS = {"server_vad": ("type", "threshold", "prefix_padding_ms", "silence_duration_ms"),
                "semantic_vad": ("type", "eagerness")}
FORMATS = {"audio/pcm": 24_000, "audio/pcmu": 8_000, "audio/pcma": 8_000}  # type -> sample rate


def event_id() -> str:
    return f"event_{uuid.uuid4().hex[:24]}"


def item_id() -> str:
    return f"item_{uuid.uuid4().hex[:24]}"


class RealtimeError(Exception):
    """A client mistake answered with an ``error`` event (the session stays open unless said)."""

    def __init__(self, code: str, message: str, param: str | None = None, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.code, self.message, self.param, self.kind = code, message, param, kind


def error_event(code: str, message: str, param: str | None = None, client_event_id: str | None = None,
                kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"type": "error", "event_id": event_id(),
            "error": {"type": kind, "code": code, "message": message, "param": param, "event_id": client_event_id}}


def _object(value: Any, param: str) -> dict:
    if not isinstance(value, dict):
        raise RealtimeError("invalid_value", f"{param} must be an object", param)
    return value


def _number(value: Any, param: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise RealtimeError("invalid_value", f"{param} must be a number from {low:g} to {high:g}", param)
    return value


def _text(value: Any, param: str, longest: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > longest:
        raise RealtimeError("invalid_value", f"{param} must be a string of at most {longest} characters", param)
    return value


@dataclass
class SessionConfig:
    format: str = "audio/pcm"
    model: str | None = None  # a configured transcription model; None: the deployment's first
    language: str | None = None
    prompt: str | None = None
    turn_detection: dict | None = field(default_factory=lambda: dict(DEFAULT_TURN_DETECTION))
    noise_reduction: dict | None = None
    include: list[str] = field(default_factory=list)

    @property
    def sample_rate(self) -> int:
        return FORMATS[self.format]

    def updated(self, session: Any) -> SessionConfig:
        """A copy with a ``session.update``'s ``session`` applied (only the fields present
        change); RealtimeError for anything this server cannot honour."""
        session = _object(session, "session")
        if session.get("type") not in (None, "transcription"):
            raise RealtimeError("invalid_value", f"session.type '{session.get('type')}' is not served here: this is a "
                                "transcription session (session.type 'transcription', intent=transcription)",
                                "session.type")
        new = copy.deepcopy(self)
        if "include" in session:
            include = session["include"] or []
            if not isinstance(include, list) or any(not isinstance(value, str) for value in include):
                raise RealtimeError("invalid_value", "session.include must be a list of strings", "session.include")
            new.include = include
        audio = _object(session.get("audio") or {}, "session.audio")
        audio_input = _object(audio.get("input") or {}, "session.audio.input")
        if "format" in audio_input:
            new.format = _format(audio_input["format"])
        if "transcription" in audio_input:
            transcription = _object(audio_input["transcription"] or {}, "session.audio.input.transcription")
            if "model" in transcription:
                model = _text(transcription["model"], "session.audio.input.transcription.model", 200)
                new.model = None if model in OPENAI_TRANSCRIPTION_MODELS else model
            if "language" in transcription:
                new.language = _text(transcription["language"], "session.audio.input.transcription.language", 16)
            if "prompt" in transcription:
                new.prompt = _text(transcription["prompt"], "session.audio.input.transcription.prompt", 2000)
        if "turn_detection" in audio_input:
            new.turn_detection = _turn_detection(audio_input["turn_detection"], self.turn_detection)
        if "noise_reduction" in audio_input:
            value = audio_input["noise_reduction"]
            if value is not None:
                value = _object(value, "session.audio.input.noise_reduction")
                if value.get("type") not in ("near_field", "far_field"):
                    raise RealtimeError("invalid_value", "session.audio.input.noise_reduction.type must be "
                                        "'near_field' or 'far_field'", "session.audio.input.noise_reduction.type")
                value = {"type": value["type"]}
            new.noise_reduction = value
        return new

    def describe(self, session_id: str, model: str, expires_at: int | None) -> dict[str, Any]:
        """The session as ``session.created`` / ``session.updated`` show it."""
        audio_format: dict[str, Any] = {"type": self.format}
        if self.format == "audio/pcm":
            audio_format["rate"] = self.sample_rate
        return {"type": "transcription", "id": session_id, "object": "realtime.transcription_session",
                "expires_at": expires_at, "include": list(self.include),
                "audio": {"input": {"format": audio_format,
                                    "transcription": {"model": model, "language": self.language,
                                                      "prompt": self.prompt},
                                    "turn_detection": _shown(self.turn_detection),
                                    "noise_reduction": copy.deepcopy(self.noise_reduction)}}}

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "model": self.model, "language": self.language, "prompt": self.prompt,
                "turn_detection": self.turn_detection, "noise_reduction": self.noise_reduction,
                "include": self.include}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionConfig:
        return cls(**data)


def _format(value: Any) -> str:
    value = _object(value, "session.audio.input.format")
    kind = value.get("type", "audio/pcm")
    if kind not in FORMATS:
        raise RealtimeError("invalid_value", f"audio format '{kind}' is not supported: use audio/pcm (24 kHz, 16-bit "
                            "little-endian mono), audio/pcmu or audio/pcma (G.711, 8 kHz)",
                            "session.audio.input.format.type")
    rate = value.get("rate")
    if rate is not None and (kind != "audio/pcm" or rate != FORMATS[kind]):
        raise RealtimeError("invalid_value", f"audio/pcm is 24000 Hz here (OpenAI's rate); got rate {rate!r}",
                            "session.audio.input.format.rate")
    return kind


def _turn_detection(value: Any, current: dict | None) -> dict | None:
    """The turn detection a session runs: server VAD's parameters (``threshold``,
    ``prefix_padding_ms``, ``silence_duration_ms``), also for semantic_vad, which keeps its
    ``eagerness`` to show it back."""
    if value is None:
        return None  # manual commits
    value = _object(value, "session.audio.input.turn_detection")
    kind = value.get("type", "server_vad")
    param = "session.audio.input.turn_detection."
    if kind == "semantic_vad":
        eagerness = value.get("eagerness") or "auto"
        if eagerness not in SEMANTIC_SILENCE_MS:
            raise RealtimeError("invalid_value", "turn_detection.eagerness must be one of 'low', 'medium', 'high', "
                                "'auto'", param + "eagerness")
        return {**DEFAULT_TURN_DETECTION, "type": kind, "eagerness": eagerness,
                "silence_duration_ms": SEMANTIC_SILENCE_MS[eagerness]}
    if kind != "server_vad":
        raise RealtimeError("invalid_value", f"turn_detection type '{kind}' is not supported: use 'server_vad' or "
                            "'semantic_vad', or null to commit turns yourself", param + "type")
    same_kind = current is not None and current.get("type") == kind
    merged = {**DEFAULT_TURN_DETECTION, **(current if same_kind else {})}
    if value.get("threshold") is not None:
        merged["threshold"] = _number(value["threshold"], param + "threshold", 0.01, 0.99)
    if value.get("prefix_padding_ms") is not None:
        merged["prefix_padding_ms"] = int(_number(value["prefix_padding_ms"], param + "prefix_padding_ms", 0, 5000))
    if value.get("silence_duration_ms") is not None:
        merged["silence_duration_ms"] = int(_number(value["silence_duration_ms"], param + "silence_duration_ms",
                                                    50, 10_000))
    return merged


def _shown(detection: dict | None) -> dict | None:
    """Turn detection as ``session.updated`` shows it: the fields of its own type."""
    if detection is None:
        return None
    return {name: detection[name] for name in SHOWN_FIELDS[detection["type"]]}
