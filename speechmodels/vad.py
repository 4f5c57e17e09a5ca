"""Voice activity detection as a capability: its request parameters and its result, shared
by every family that does VAD (and by the API, which validates requests with them)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field


class VADParams(BaseModel):
    """Per-request settings (HSE's field names and defaults)."""

    model_config = ConfigDict(extra="ignore")

    threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    min_speech_duration_ms: int = Field(default=250, ge=0, le=60_000)
    min_silence_duration_ms: int = Field(default=100, ge=0, le=60_000)
    speech_pad_ms: int = Field(default=30, ge=0, le=10_000)
    return_seconds: bool = Field(default=False, description="timestamps in seconds instead of 16 kHz samples")
    get_timestamps: bool = Field(default=False, description="also return speech segments")


@dataclass(frozen=True)
class VoiceActivity:
    speech_activity: bool
    # (start, end) in samples at 16 kHz, or in seconds when return_seconds was asked
    timestamps: list[tuple[float, float]] | None




def read_segments(raw: bytes | str | list | None, duration: float) -> list[tuple[float, float]]:
    """Speech segments in seconds as a VAD step hands them on (JSON ``[[start, end], ...]``),
    held within the recording and in order."""
    if raw is None:
        return []
    document = json.loads(raw) if isinstance(raw, (bytes, str)) else raw
    segments = sorted((max(0.0, float(start)), min(duration, float(end))) for start, end in document)
    return [(start, end) for start, end in segments if end > start]
