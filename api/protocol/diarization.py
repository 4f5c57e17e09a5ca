"""``POST /v1/audio/diarization``: who spoke when. Multipart (``file`` and form fields, as
OpenAI-style clients send audio) or JSON with base64 audio (HSE style)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from api.protocol.common import CallbackOption
from speechmodels.diarization import MAX_KNOWN_SPEAKERS


class DiarizationOptions(CallbackOption):
    model: str = Field(default="diarization", description="the diarization pipeline (a toolchain) or its clustering model")
    response_format: Literal["json", "rttm"] = "json"
    num_speakers: int | None = Field(default=None, ge=1, le=32, description="the exact count, when known")
    min_speakers: int | None = Field(default=None, ge=1, le=32)
    max_speakers: int | None = Field(default=None, ge=1, le=32)
    known_speaker_names: list[str] = Field(default_factory=list, max_length=MAX_KNOWN_SPEAKERS)
    #: base64 audio or data URLs (``data:audio/wav;base64,...``), one per name, 2-10 s each
    known_speaker_references: list[str] = Field(default_factory=list, max_length=MAX_KNOWN_SPEAKERS)

    @field_validator("known_speaker_names")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        if any(not name.strip() or len(name) > 64 for name in names):
            raise ValueError("a known speaker's name is 1 to 64 characters")
        return names

    # checked on the later field of each pair, so the error names it
    @field_validator("max_speakers")
    @classmethod
    def _counts(cls, high: int | None, info: ValidationInfo) -> int | None:
        low, wanted = info.data.get("min_speakers") or 1, info.data.get("num_speakers")
        if low > (high or 32) or (wanted is not None and not low <= wanted <= (high or 32)):
            raise ValueError("num_speakers, min_speakers and max_speakers contradict each other")
        return high

    @field_validator("known_speaker_references")
    @classmethod
    def _pairs(cls, references: list[str], info: ValidationInfo) -> list[str]:
        if references and len(references) != len(info.data.get("known_speaker_names", [])):
            raise ValueError("known_speaker_names and known_speaker_references must pair up, one clip per name")
        return references


class DiarizationRequest(DiarizationOptions):
    """The JSON body."""

    input_audio: str = Field(description="base64 audio")


class SpeakerSegment(BaseModel):
    start: float
    end: float
    speaker: str


class DiarizationResponse(BaseModel):
    duration: float
    segments: list[SpeakerSegment]
