"""POST /v1/audio/convert: audio in, audio out (denoising, restoration), HSE's request and
envelope; ``output_options`` (format, sample rate) are applied."""

from __future__ import annotations

from fastapi import APIRouter

from api.audio_input import read_audio
from api.deps import CatalogDep, DispatcherDep, PreferenceDep, SettingsDep
from api.filters import filter_steps
from api.json_requests import OrjsonRoute
from api.protocol.common import AudioOutputOptions, DataEnvelope
from api.protocol.convert import AudioConvertRequest
from api.routes.common import ASYNC_RESPONSE, ERROR_RESPONSES, run_job
from jobcontract.payload import JobInput
from jobcontract.plan import JobPlan
from speechmodels.registry import AUDIO_CONVERSION

router = APIRouter(tags=["audio conversion"], route_class=OrjsonRoute)


@router.post("/v1/audio/convert", response_model=DataEnvelope, responses={**ERROR_RESPONSES, **ASYNC_RESPONSE})
async def convert_audio(body: AudioConvertRequest, catalog: CatalogDep, dispatcher: DispatcherDep,
                        settings: SettingsDep, preference: PreferenceDep):
    chain = catalog.chain(body.model, AUDIO_CONVERSION)  # a model, or the voicefixer toolchain
    plan = JobPlan.build(chain.name, AUDIO_CONVERSION,
                         chain.steps + filter_steps(catalog, body.post_generation_filters))
    job_input = JobInput({"audio": await read_audio(body.source_audio, settings.max_audio_seconds,
                                                    param="source_audio")},
                         output=(body.output_options or AudioOutputOptions()).audio_output())
    return await run_job(dispatcher, plan, job_input, preference, {"dialect": "hse"}, callback_url=body.callback_url)
