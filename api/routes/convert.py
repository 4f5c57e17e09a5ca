"""POST /v1/audio/convert: audio in, audio out (denoising, restoration), HSE's request and
envelope; ``output_options`` (format, sample rate) are applied."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.audio_input import read_audio
from api.deps import CatalogDep, DispatcherDep, PreferenceDep, SettingsDep
from api.filters import filter_stages
from api.protocol import AudioOutputOptions, CallbackOption, PostGenerationFilter
from api.routes.common import ASYNC_RESPONSE, ERROR_RESPONSES, run_job
from speechmodels.registry import AUDIO_CONVERSION

router = APIRouter(tags=["audio conversion"])


class AudioConvertRequest(CallbackOption):
    model: str = Field(description="an audio conversion model (e.g. rnnoise) or toolchain (voicefixer)")
    source_audio: str = Field(description="base64 audio to convert")
    output_options: AudioOutputOptions | None = None
    post_generation_filters: list[PostGenerationFilter] | None = Field(
        default=None, max_length=8, description="more conversion models to run after this one, in order")


class AudioConvertResponse(BaseModel):
    id: str
    model: str
    created: int
    data: str = Field(description="base64 of the converted audio file")


@router.post("/v1/audio/convert", response_model=AudioConvertResponse, responses={**ERROR_RESPONSES, **ASYNC_RESPONSE})
async def convert_audio(body: AudioConvertRequest, catalog: CatalogDep, dispatcher: DispatcherDep,
                        settings: SettingsDep, preference: PreferenceDep):
    plan = catalog.plan(body.model, AUDIO_CONVERSION, "audio conversion")  # a model, or the voicefixer toolchain
    stages = plan.stages + filter_stages(catalog, body.post_generation_filters)
    output = body.output_options or AudioOutputOptions()
    payload = {"audio": await read_audio(body.source_audio, settings.max_audio_seconds, param="source_audio"),
               "output": {"format": output.format or "wav", "sample_rate": output.sample_rate}}
    return await run_job(dispatcher, plan.head, AUDIO_CONVERSION, payload, preference, {"dialect": "hse"},
                         callback_url=body.callback_url, stages=stages, head_capability=plan.head_capability,
                         name=plan.name)
