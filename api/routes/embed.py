"""POST /v1/embed/speaker: speaker embedding (HSE's request and envelope)."""

from __future__ import annotations

from fastapi import APIRouter

from api.audio_input import read_audio
from api.deps import CatalogDep, DispatcherDep, PreferenceDep, SettingsDep
from api.json_requests import OrjsonRoute
from api.protocol.common import DataEnvelope
from api.protocol.embed import EmbedSpeakerRequest
from api.routes.common import ASYNC_RESPONSE, ERROR_RESPONSES, run_job
from jobcontract.payload import JobInput
from jobcontract.plan import JobPlan
from speechmodels.registry import SPEAKER_EMBEDDING

router = APIRouter(tags=["speaker embedding"], route_class=OrjsonRoute)


@router.post("/v1/embed/speaker", response_model=DataEnvelope, responses={**ERROR_RESPONSES, **ASYNC_RESPONSE})
async def embed_speaker(body: EmbedSpeakerRequest, catalog: CatalogDep, dispatcher: DispatcherDep,
                        settings: SettingsDep, preference: PreferenceDep):
    model = catalog.member(body.model, SPEAKER_EMBEDDING)  # a toolchain's encoder too
    # the answer's model is the name asked for (a toolchain's, as HSE echoes it)
    plan = JobPlan.build(body.model, SPEAKER_EMBEDDING, [(model.name, SPEAKER_EMBEDDING)])
    job_input = JobInput({"audio": await read_audio(body.input_audio, settings.max_audio_seconds)})
    return await run_job(dispatcher, plan, job_input, preference, callback_url=body.callback_url)
