"""``POST /v1/audio/vad``: HSE's DetectVoiceActivityRequest and its answer."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.protocol.common import CallbackOption
from speechmodels.vad import VADParams


class VADRequest(VADParams, CallbackOption):
    """The VAD parameters plus the model and the audio."""

    model: str = Field(description="a configured model that does VAD, e.g. silero-vad")
    input_audio: str = Field(description="base64 audio in any common format, rate and channel count")


class SpeechSegment(BaseModel):
    start: int | float  # samples at 16 kHz, or seconds with return_seconds
    end: int | float


class VADResponse(BaseModel):
    id: str
    model: str
    created: int
    speech_activity: bool
    timestamps: list[SpeechSegment] | None = None
