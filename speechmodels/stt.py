"""Speech-to-text as a capability: request parameters and the transcription result, shared
by every family that transcribes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Task = Literal["transcribe", "translate"]


class TranscriptionParams(BaseModel):
    model_config = ConfigDict(extra="ignore")

    task: Task = "transcribe"
    language: str | None = Field(default=None, min_length=2, max_length=16, description="ISO 639-1 code; detected if unset")
    prompt: str | None = Field(default=None, max_length=2000, description="text that conditions the decoding")
    temperature: float = Field(default=0.0, ge=0.0, le=1.0)
    word_timestamps: bool = False
    beam_size: int = Field(default=5, ge=1, le=10)
    # Whisper's timestamp tokens: without them a window holding one chunk of one request decodes
    # ~10 % faster (a 10-minute file, tiny.en) and that chunk is one segment, as faster-whisper's
    # batched pipeline gives; the API turns them off for answers that show no segment times
    segment_times: bool = Field(default=True, description="decode segment timestamps (else one segment "
                                "per speech chunk)")


@dataclass
class TranscribedWord:
    word: str
    start: float
    end: float
    probability: float


@dataclass
class TranscribedSegment:
    id: int
    start: float
    end: float
    text: str
    tokens: list[int]
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    temperature: float
    words: list[TranscribedWord] | None = None


@dataclass
class Transcription:
    text: str
    language: str
    duration: float
    task: str = "transcribe"
    segments: list[TranscribedSegment] = field(default_factory=list)
