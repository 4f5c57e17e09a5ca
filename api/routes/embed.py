"""POST /v1/embed/speaker: speaker embedding (HSE's request and envelope)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.audio_input import read_audio
from api.deps import CatalogDep, DispatcherDep, PreferenceDep, SettingsDep
from api.protocol import CallbackOption
from api.routes.common import ASYNC_RESPONSE, ERROR_RESPONSES, run_job
from speechmodels.registry import SPEAKER_EMBEDDING

router = APIRouter(tags=["speaker embedding"])


class EmbedSpeakerRequest(CallbackOption):
    model: str = Field(description="a configured speaker encoder (e.g. harmonyspeech-encoder) or a toolchain with one")
    input_audio: str = Field(description="base64 audio of one speaker")


class EmbedSpeakerResponse(BaseModel):
    id: str
    model: str
    created: int
    data: str = Field(description="base64 of the embedding as little-endian float32")


@router.post("/v1/embed/speaker", response_model=EmbedSpeakerResponse, responses={**ERROR_RESPONSES, **ASYNC_RESPONSE})
async def embed_speaker(body: EmbedSpeakerRequest, catalog: CatalogDep, dispatcher: DispatcherDep,
                        settings: SettingsDep, preference: PreferenceDep):
    model = catalog.member(body.model, SPEAKER_EMBEDDING, "speaker embedding")  # a toolchain's encoder too
    payload = {"audio": await read_audio(body.input_audio, settings.max_audio_seconds)}
    return await run_job(dispatcher, model, SPEAKER_EMBEDDING, payload, preference, callback_url=body.callback_url)
