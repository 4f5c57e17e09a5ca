"""POST /v1/voice/convert: the words of ``source_audio`` in the voice of ``target_audio`` (or
of a ``target_embedding`` from a tone colour encoder), on a tone converter: the
``openvoice_v1``/``openvoice_v2`` toolchains (VAD and encoder steps for the target, then the
converter) or a converter model given an embedding."""

from __future__ import annotations

from fastapi import APIRouter

from api.audio_input import read_audio, read_embedding, read_vad_segments
from api.deps import CatalogDep, DispatcherDep, PreferenceDep, SettingsDep
from api.errors import APIError
from api.filters import filter_steps
from api.json_requests import OrjsonRoute
from api.protocol.common import AudioOutputOptions, DataEnvelope
from api.protocol.voice import ConversionOptions, VoiceConvertRequest
from api.routes.common import ASYNC_RESPONSE, ERROR_RESPONSES, run_job
from jobcontract.payload import JobInput
from jobcontract.plan import JobPlan
from speechmodels.registry import VOICE_CONVERSION

router = APIRouter(tags=["voice conversion"], route_class=OrjsonRoute)


@router.post("/v1/voice/convert", response_model=DataEnvelope, responses={**ERROR_RESPONSES, **ASYNC_RESPONSE})
async def convert_voice(body: VoiceConvertRequest, catalog: CatalogDep, dispatcher: DispatcherDep,
                        settings: SettingsDep, preference: PreferenceDep):
    provided = frozenset(name for name in ("target_embedding", "input_vad_data") if getattr(body, name))
    chain = catalog.chain(body.model, VOICE_CONVERSION, provided=provided)
    # options left unset are the converter's own defaults (tau 0.3), so an explicit 0 stays 0
    options = (body.generation_options or ConversionOptions()).model_dump(include={"tau"}, exclude_none=True)
    request = {**chain.fields, **options,
               "source_audio": await read_audio(body.source_audio, settings.max_audio_seconds, param="source_audio")}
    if body.target_embedding:
        request["embedding"] = read_embedding(body.target_embedding, "target_embedding")
    elif body.target_audio and chain.head_capability != VOICE_CONVERSION:
        request["audio"] = await read_audio(body.target_audio, settings.max_audio_seconds, param="target_audio")
        if body.input_vad_data:
            request["vad_segments"] = read_vad_segments(body.input_vad_data, settings.max_audio_seconds)
    else:
        raise APIError(400, "send target_embedding, or target_audio to a toolchain that encodes it "
                       "(e.g. openvoice_v2)", reason="missing_target", param="target_embedding")
    plan = JobPlan.build(chain.name, VOICE_CONVERSION,
                         chain.steps + filter_steps(catalog, body.post_generation_filters))
    job_input = JobInput(request, output=(body.output_options or AudioOutputOptions()).audio_output())
    return await run_job(dispatcher, plan, job_input, preference, {"dialect": "hse"}, callback_url=body.callback_url)
