"""POST /v1/voice/convert: the words of ``source_audio`` in the voice of ``target_audio`` (or
of a ``target_embedding`` from a tone colour encoder), on a tone converter: the
``openvoice_v1``/``openvoice_v2`` toolchains (VAD and encoder steps for the target, then the
converter) or a converter model given an embedding."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.audio_input import read_audio, read_embedding, read_vad_segments
from api.deps import CatalogDep, DispatcherDep, PreferenceDep, SettingsDep
from api.errors import APIError
from api.filters import filter_stages
from api.protocol import AudioOutputOptions, CallbackOption, PostGenerationFilter
from api.routes.common import ASYNC_RESPONSE, ERROR_RESPONSES, run_job
from speechmodels.registry import VOICE_CONVERSION

router = APIRouter(tags=["voice conversion"])


class ConversionOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    tau: float | None = Field(default=None, ge=0.0, le=1.0, description="latent sampling temperature (0.3)")


class VoiceConvertRequest(CallbackOption):
    model: str = Field(description="a tone converter toolchain (openvoice_v2) or converter model")
    source_audio: str = Field(description="base64 audio whose words are kept")
    target_audio: str | None = Field(default=None, description="base64 audio of the voice to convert to")
    target_embedding: str | None = Field(default=None, description="base64 float32 tone colour embedding instead")
    input_vad_data: str | None = Field(default=None, max_length=1_000_000,
                                       description="target_audio's speech segments (JSON, seconds), "
                                       "as /v1/audio/vad returns them: skips the toolchain's VAD step")
    generation_options: ConversionOptions | None = None
    output_options: AudioOutputOptions | None = None
    post_generation_filters: list[PostGenerationFilter] | None = Field(default=None, max_length=8)


class VoiceConvertResponse(BaseModel):
    id: str
    model: str
    created: int
    data: str = Field(description="base64 of the converted audio file")


@router.post("/v1/voice/convert", response_model=VoiceConvertResponse, responses={**ERROR_RESPONSES, **ASYNC_RESPONSE})
async def convert_voice(body: VoiceConvertRequest, catalog: CatalogDep, dispatcher: DispatcherDep,
                        settings: SettingsDep, preference: PreferenceDep):
    provided = frozenset(name for name in ("target_embedding", "input_vad_data") if getattr(body, name))
    plan = catalog.plan(body.model, VOICE_CONVERSION, "voice conversion", provided=provided)
    output = body.output_options or AudioOutputOptions()
    payload = {**plan.fields,
               "source_audio": await read_audio(body.source_audio, settings.max_audio_seconds, param="source_audio"),
               "tau": (body.generation_options or ConversionOptions()).tau or 0.3,
               "output": {"format": output.format or "wav", "sample_rate": output.sample_rate}}
    if body.target_embedding:
        payload["embedding"] = read_embedding(body.target_embedding, "target_embedding")
    elif body.target_audio and plan.head_capability != VOICE_CONVERSION:
        payload["audio"] = await read_audio(body.target_audio, settings.max_audio_seconds, param="target_audio")
        if body.input_vad_data:
            payload["vad_segments"] = read_vad_segments(body.input_vad_data, settings.max_audio_seconds)
    else:
        raise APIError(400, "send target_embedding, or target_audio to a toolchain that encodes it "
                       "(e.g. openvoice_v2)", reason="missing_target", param="target_embedding")
    stages = plan.stages + filter_stages(catalog, body.post_generation_filters)
    return await run_job(dispatcher, plan.head, VOICE_CONVERSION, payload, preference, {"dialect": "hse"},
                         callback_url=body.callback_url, stages=stages, head_capability=plan.head_capability,
                         name=plan.name)
