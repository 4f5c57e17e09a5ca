"""The voice library and Open WebUI's discovery listings.

``POST /v1/audio/voices`` (OpenAI's Voices API: multipart ``name``, ``audio_sample``,
``consent``; or JSON with base64 ``audio_sample``) keeps a reference clip per tenant and runs,
as real jobs on the fleet, the steps of each configured cloning toolchain up to its speaker
encoder (``openvoice_v1``: VAD, then its tone colour encoder), so that ``/v1/audio/speech``
with ``voice: {"id": …}`` (or the saved name) on that toolchain brings the stored embedding and
its VAD and encoder steps are skipped.

``GET /v1/audio/models`` and ``GET /v1/audio/voices`` answer in the shapes Open WebUI reads.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from api.audio_input import check_audio, read_audio
from api.catalog import ModelCatalog
from api.deps import CatalogDep, DispatcherDep, SettingsDep, tenant
from api.dispatch import JobDispatcher, Preference, finished_job_body
from api.errors import APIError, ErrorResponse, not_found
from api.forms import invalid_request
from api.json_requests import OrjsonRoute
from api.protocol.speech import SpeechRequest
from api.protocol.voices import (
    AudioModelEntry,
    AudioModelListing,
    SavedVoice,
    VoiceCreateJSON,
    VoiceDeleted,
    VoiceEntry,
    VoiceListing,
    VoiceReference,
)
from api.routes.common import ERROR_RESPONSES
from jobcontract.keys import card_key, voice_sample_key, voices_key
from jobcontract.payload import JobInput
from jobcontract.plan import JobPlan
from speechmodels import audio as audio_io
from speechmodels.registry import SPEAKER_EMBEDDING, SPEECH_SYNTHESIS
from speechmodels.toolchains import TOOLCHAINS

router = APIRouter(tags=["voices"], route_class=OrjsonRoute)
PUBLIC_TENANT = "public"  # who owns voices on a server without API keys
VOICE_ID_PREFIX = "voice_"


def _owner(request: Request) -> str:
    return tenant(request) or PUBLIC_TENANT


def cloning_toolchains(catalog: ModelCatalog) -> list[str]:
    """The toolchains this deployment can speak with that take a speaker embedding."""
    return [toolchain.name for toolchain, routes in catalog.toolchains(SPEECH_SYNTHESIS)
            if SPEECH_SYNTHESIS in routes
            and any(step.capability == SPEAKER_EMBEDDING for step in toolchain.routes[SPEECH_SYNTHESIS])]


def _embedding_plan(catalog: ModelCatalog, toolchain: str) -> tuple[JobPlan, dict]:
    """The toolchain's speech chain up to and including its speaker encoder (its VAD step too:
    the stored embedding is the one a reference clip would have given)."""
    chain = catalog.chain(toolchain, SPEECH_SYNTHESIS)  # nothing provided: every step, in order
    declared = TOOLCHAINS[toolchain].routes[SPEECH_SYNTHESIS]
    end = next(index for index, step in enumerate(declared) if step.capability == SPEAKER_EMBEDDING)
    fields = {key: value for step in declared[:end] for key, value in step.request.items()}
    return JobPlan.build(toolchain, SPEAKER_EMBEDDING, chain.steps[:end + 1]), fields


async def _embed(dispatcher: JobDispatcher, catalog: ModelCatalog, toolchain: str, audio: bytes,
                 owner: str) -> str:
    plan, fields = _embedding_plan(catalog, toolchain)
    record = await dispatcher.submit(plan, JobInput({**fields, "audio": audio}), Preference(owner=owner))
    body = await finished_job_body(record, dispatcher.store)  # raises the job's own error
    return body["data"]


async def _create_body(request: Request, max_seconds: float) -> tuple[str, bytes, str | None]:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=1, max_fields=8)
        except MultiPartException as exc:
            raise APIError(400, f"malformed multipart body: {exc.message}", reason="invalid_multipart") from None
        upload = form.get("audio_sample")
        if not isinstance(upload, UploadFile):
            raise APIError(400, "send the reference clip as a file in the 'audio_sample' field",
                           reason="invalid_request", param="audio_sample")
        name, consent = form.get("name"), form.get("consent")
        try:
            parsed = VoiceCreateJSON(name=name if isinstance(name, str) else "", audio_sample="",
                                     consent=consent if isinstance(consent, str) else None)
        except ValidationError as exc:
            raise invalid_request(exc) from None
        return parsed.name, await check_audio(await upload.read(), max_seconds, param="audio_sample"), parsed.consent
    if content_type.startswith("application/json"):
        try:
            parsed = VoiceCreateJSON.model_validate_json(await request.body())
        except ValidationError as exc:
            raise invalid_request(exc) from None
        return parsed.name, await read_audio(parsed.audio_sample, max_seconds, param="audio_sample"), parsed.consent
    raise APIError(415, "send multipart/form-data (name, audio_sample, consent) or JSON with base64 audio_sample",
                   reason="unsupported_media_type")


async def _stored(request: Request) -> dict[str, dict]:
    raw = await request.app.state.redis.hgetall(voices_key(_owner(request)))
    return {voice_id: json.loads(value) for voice_id, value in raw.items()}


def _view(voice: dict) -> SavedVoice:
    return SavedVoice(id=voice["id"], created_at=voice["created_at"], name=voice["name"], consent=voice.get("consent"),
                      duration=voice.get("duration"), toolchains=sorted(voice.get("embeddings", {})))


@router.post("/v1/audio/voices", response_model=SavedVoice, status_code=201,
             responses={**ERROR_RESPONSES, 409: {"model": ErrorResponse, "description": "name taken"},
                        415: {"model": ErrorResponse, "description": "neither multipart/form-data nor JSON"}},
             openapi_extra={"requestBody": {"required": True, "content": {
                 "multipart/form-data": {"schema": {
                     "type": "object", "required": ["name", "audio_sample"],
                     "properties": {"name": {"type": "string"}, "audio_sample": {"type": "string", "format": "binary"},
                                    "consent": {"type": "string"}}}},
                 "application/json": {"schema": VoiceCreateJSON.model_json_schema()}}}},
             summary="Save a voice: a reference clip and its embedding for each cloning toolchain")
async def create_voice(request: Request, catalog: CatalogDep, dispatcher: DispatcherDep, settings: SettingsDep):
    name, audio, consent = await _create_body(request, settings.max_audio_seconds)
    name = name.strip()
    if not name or name.startswith(VOICE_ID_PREFIX):
        raise APIError(400, f"name must be non-blank and not start with '{VOICE_ID_PREFIX}'", reason="invalid_name",
                       param="name")
    toolchains = cloning_toolchains(catalog)
    if not toolchains:
        raise APIError(400, "no voice-cloning toolchain (harmonyspeech, openvoice_v1, openvoice_v2) is configured "
                       "here: a saved voice would have nothing to speak with", reason="no_cloning_toolchain")
    stored = await _stored(request)
    if any(voice["name"] == name for voice in stored.values()):
        raise APIError(409, f"a voice named '{name}' exists; delete it first or pick another name",
                       reason="voice_exists", param="name")
    if len(stored) >= settings.max_voices_per_tenant:
        raise APIError(409, f"the library holds {len(stored)} voices, the most one key may keep",
                       reason="voice_limit_reached")
    owner = _owner(request)
    embeddings = await asyncio.gather(*(_embed(dispatcher, catalog, toolchain, audio, owner)
                                        for toolchain in toolchains))
    voice = {"id": VOICE_ID_PREFIX + uuid.uuid4().hex[:24], "name": name, "created_at": int(time.time()),
             "consent": consent, "duration": _seconds(audio),
             "embeddings": dict(zip(toolchains, embeddings))}
    client = request.app.state.redis
    async with client.pipeline(transaction=True) as pipe:
        pipe.hset(voices_key(owner), voice["id"], json.dumps(voice))
        pipe.set(voice_sample_key(owner, voice["id"]), base64.b64encode(audio).decode("ascii"))
        await pipe.execute()
    return _view(voice)


def _seconds(audio: bytes) -> float | None:
    duration = audio_io.probe(audio).duration_s  # the header: the route already checked it
    return None if duration is None else round(duration, 3)


async def _model_voices(request: Request, catalog: ModelCatalog) -> list[str]:
    """The text-to-speech models' own voices, as their workers published them (else config)."""
    configs = catalog.serving(SPEECH_SYNTHESIS)
    raw = await request.app.state.redis.mget([card_key(config.name) for config in configs]) if configs else []
    names: dict[str, None] = {}
    for config, card in zip(configs, raw):
        for voice in (json.loads(card).get("voices") if card else None) or config.voices or []:
            names[voice] = None
    return list(names)


@router.get("/v1/audio/voices", response_model=VoiceListing,
            summary="Voices: the models' own and the saved ones (Open WebUI reads 'voices')")
async def list_voices(request: Request, catalog: CatalogDep) -> VoiceListing:
    # a listing read without a key (SPEECHFLEET_PUBLIC_LISTINGS) shows no one's saved voices
    keyless = request.app.state.settings.api_keys and tenant(request) is None
    saved = [] if keyless else list((await _stored(request)).values())
    saved.sort(key=lambda voice: (voice["created_at"], voice["id"]))
    entries = [VoiceEntry(id=name, name=name) for name in await _model_voices(request, catalog)]
    entries += [VoiceEntry(id=voice["id"], name=voice["name"]) for voice in saved]
    return VoiceListing(voices=entries, data=[_view(voice) for voice in saved])


@router.get("/v1/audio/voices/{voice_id}", response_model=SavedVoice, responses=ERROR_RESPONSES)
async def get_voice(voice_id: str, request: Request) -> SavedVoice:
    return _view(await _voice_or_404(request, voice_id))


@router.delete("/v1/audio/voices/{voice_id}", response_model=VoiceDeleted, responses=ERROR_RESPONSES)
async def delete_voice(voice_id: str, request: Request) -> VoiceDeleted:
    await _voice_or_404(request, voice_id)
    owner = _owner(request)
    async with request.app.state.redis.pipeline(transaction=True) as pipe:
        pipe.hdel(voices_key(owner), voice_id)
        pipe.delete(voice_sample_key(owner, voice_id))
        await pipe.execute()
    return VoiceDeleted(id=voice_id)


async def _voice_or_404(request: Request, voice_id: str, param: str | None = None) -> dict:
    raw = await request.app.state.redis.hget(voices_key(_owner(request)), voice_id)
    if raw is None:  # another tenant's voice is as unknown as a voice that never was
        raise not_found(f"voice '{voice_id}' does not exist; see GET /v1/audio/voices", reason="voice_not_found",
                        param=param)
    return json.loads(raw)


async def with_saved_voice(request: Request, body: SpeechRequest) -> SpeechRequest:
    """A speech request on a cloning toolchain whose ``voice`` names a saved voice (by id, as
    ``{"id": …}`` or a ``voice_…`` string, or by name), made into one that brings the voice's
    stored embedding for that toolchain (its reference clip, if the toolchain came later)."""
    voice = body.voice
    if voice is None:
        return body
    if isinstance(voice, VoiceReference) or voice.startswith(VOICE_ID_PREFIX):
        saved = await _voice_or_404(request, voice.id if isinstance(voice, VoiceReference) else voice, param="voice")
    else:
        saved = next((entry for entry in (await _stored(request)).values() if entry["name"] == voice), None)
        if saved is None:
            return body  # a voice of the base speaker (a style, a MeloTTS speaker)
    if body.input_audio or body.input_embedding:
        raise APIError(400, "voice names a saved voice: send it or input_audio / input_embedding, not both",
                       reason="ambiguous_reference", param="voice")
    embedding = saved.get("embeddings", {}).get(body.model)
    if embedding is not None:
        return body.model_copy(update={"voice": None, "input_embedding": embedding, "input_vad_data": None})
    sample = await request.app.state.redis.get(voice_sample_key(_owner(request), saved["id"]))
    if sample is None:
        raise APIError(410, f"the reference clip of voice '{saved['id']}' is gone", reason="voice_sample_missing",
                       param="voice")
    return body.model_copy(update={"voice": None, "input_audio": sample, "input_vad_data": None})


@router.get("/v1/audio/models", response_model=AudioModelListing,
            summary="Text-to-speech models and toolchains, as Open WebUI discovers them")
async def list_audio_models(catalog: CatalogDep) -> AudioModelListing:
    names = [config.name for config in catalog.serving(SPEECH_SYNTHESIS)]
    names += [toolchain.name for toolchain, routes in catalog.toolchains(SPEECH_SYNTHESIS) if SPEECH_SYNTHESIS in routes]
    return AudioModelListing(models=[AudioModelEntry(id=name) for name in names])
