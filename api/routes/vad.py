"""POST /v1/audio/vad: voice activity detection (HSE's fields and semantics)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.audio_input import read_audio
from api.deps import CatalogDep, DispatcherDep, PreferenceDep, SettingsDep
from api.protocol import CallbackOption
from api.routes.common import ASYNC_RESPONSE, ERROR_RESPONSES, run_job
from speechmodels.registry import VAD
from speechmodels.vad import VADParams

router = APIRouter(tags=["voice activity detection"])


class VADRequest(VADParams, CallbackOption):
    """HSE's DetectVoiceActivityRequest: the VAD parameters plus the model and the audio."""

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


@router.post("/v1/audio/vad", response_model=VADResponse, responses={**ERROR_RESPONSES, **ASYNC_RESPONSE})
async def detect_voice_activity(body: VADRequest, catalog: CatalogDep, dispatcher: DispatcherDep,
                                settings: SettingsDep, preference: PreferenceDep):
    model = catalog.require(body.model, VAD, "voice activity detection")
    payload = body.model_dump(exclude={"model", "input_audio", "callback_url"}) | {"task": "vad"}
    payload["audio"] = await read_audio(body.input_audio, settings.max_audio_seconds)
    return await run_job(dispatcher, model, VAD, payload, preference, callback_url=body.callback_url)
