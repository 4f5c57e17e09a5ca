"""POST /v1/audio/vad: voice activity detection (HSE's fields and semantics)."""

from __future__ import annotations

from fastapi import APIRouter

from api.audio_input import read_audio
from api.deps import CatalogDep, DispatcherDep, PreferenceDep, SettingsDep
from api.json_requests import OrjsonRoute
from api.protocol.vad import VADRequest, VADResponse
from api.routes.common import ASYNC_RESPONSE, ERROR_RESPONSES, run_job
from jobcontract.payload import JobInput
from jobcontract.plan import JobPlan
from speechmodels.registry import TRANSCRIPTION, VAD

router = APIRouter(tags=["voice activity detection"], route_class=OrjsonRoute)


@router.post("/v1/audio/vad", response_model=VADResponse, responses={**ERROR_RESPONSES, **ASYNC_RESPONSE})
async def detect_voice_activity(body: VADRequest, catalog: CatalogDep, dispatcher: DispatcherDep,
                                settings: SettingsDep, preference: PreferenceDep):
    model = catalog.require(body.model, VAD)
    if TRANSCRIPTION in catalog.capabilities[model.name]:
        # a Whisper model "detects" speech by transcribing it, and HSE answers with its segments
        job_input = JobInput({"audio": await read_audio(body.input_audio, settings.max_audio_seconds),
                              "task": "transcribe", "word_timestamps": body.get_timestamps})
        plan = JobPlan.build(model.name, TRANSCRIPTION, [(model.name, TRANSCRIPTION)])
        return await run_job(dispatcher, plan, job_input, preference,
                             {"dialect": "hse_vad", "get_timestamps": body.get_timestamps},
                             callback_url=body.callback_url)
    request = body.model_dump(exclude={"model", "input_audio", "callback_url"}) | {"task": "vad"}
    request["audio"] = await read_audio(body.input_audio, settings.max_audio_seconds)
    plan = JobPlan.build(model.name, VAD, [(model.name, VAD)])
    return await run_job(dispatcher, plan, JobInput(request), preference, callback_url=body.callback_url)
