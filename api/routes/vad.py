"""POST /v1/audio/vad: voice activity detection (HSE's fields and semantics)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.audio_input import read_audio
from api.deps import CatalogDep, DispatcherDep, PreferenceDep, SettingsDep
from api.routes.common import ASYNC_RESPONSE, ERROR_RESPONSES, run_job
from speechmodels.registry import VAD

router = APIRouter(tags=["voice activity detection"])


class VADRequest(BaseModel):
    model: str = Field(description="a configured model that does VAD, e.g. silero-vad")
    input_audio: str = Field(description="base64 audio in any common format, rate and channel count")
    get_timestamps: bool = Field(default=False, description="also return speech segments")
    threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    min_speech_duration_ms: int = Field(default=250, ge=0, le=60_000)
    min_silence_duration_ms: int = Field(default=100, ge=0, le=60_000)
    speech_pad_ms: int = Field(default=30, ge=0, le=10_000)
    return_seconds: bool = Field(default=False, description="timestamps in seconds instead of 16 kHz samples")


class SpeechSegment(BaseModel):
    start: int | float  # samples at 16 kHz, or seconds with return_seconds
    end: int | float


class VADResponse(BaseModel):
    id: str
    model: str
    created: int
    speech_activity: bool
    timestamps: list[SpeechSegment] | None = None


@router.post("/v1/audio/vad", response_model=VADResponse, responses={**ERROR_RESPONSES, **ASYNC_RESPONSE})
async def detect_voice_activity(body: VADRequest, catalog: CatalogDep, dispatcher: DispatcherDep,
                                settings: SettingsDep, preference: PreferenceDep):
    model = catalog.require(body.model, VAD, "voice activity detection")
    payload = body.model_dump(exclude={"model", "input_audio"})
    payload["audio"] = read_audio(body.input_audio, settings.max_audio_seconds)
    return await run_job(dispatcher, model, VAD, payload, preference)
