"""POST /v1/audio/transcriptions (HSE JSON or OpenAI multipart, by Content-Type) and
POST /v1/audio/translations (OpenAI multipart); ``stream=true`` on either (OpenAI multipart)
streams the transcript piece by piece (``api.transcription_stream``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import ValidationError

from api.audio_input import check_audio, read_audio
from api.deps import CatalogDep, DispatcherDep, PreferenceDep, SettingsDep
from api.errors import APIError, ErrorResponse
from api.forms import invalid_request, read_form
from api.json_requests import OrjsonRoute
from api.protocol.transcription import HSETranscriptionRequest, OpenAITranscriptionForm
from api.routes.common import ASYNC_RESPONSE, ERROR_RESPONSES, run_job
from api.transcription_stream import stream_transcription
from jobcontract.payload import JobInput
from jobcontract.plan import JobPlan
from speechmodels.diarization import KNOWN_REFERENCE_SECONDS
from speechmodels.registry import DIARIZATION, SPEAKER_ATTRIBUTION, TRANSCRIPTION

router = APIRouter(tags=["speech to text"], route_class=OrjsonRoute)
# OpenAI response formats that show only the text, not when it was said
SEGMENTLESS_FORMATS = ("json", "text")

_RESPONSES = {**ERROR_RESPONSES, **ASYNC_RESPONSE,
              415: {"model": ErrorResponse, "description": "neither multipart/form-data nor application/json"}}


async def _openai_form(request: Request, max_seconds: float) -> tuple[OpenAITranscriptionForm, bytes]:
    parsed, uploads = await read_form(request, OpenAITranscriptionForm, max_fields=32, list_fields=(
        "timestamp_granularities", "known_speaker_names", "known_speaker_references"))
    (upload, *_) = uploads.get("file") or [None]
    if upload is None:
        raise APIError(400, "the audio must be sent as a file in the 'file' field", reason="invalid_request",
                       param="file")
    return parsed, await check_audio(await upload.read(), max_seconds, param="file")


_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["file", "model"],
                "properties": {"file": {"type": "string", "format": "binary"},
                               **OpenAITranscriptionForm.model_json_schema()["properties"]}}},
            "application/json": {"schema": HSETranscriptionRequest.model_json_schema()},
        },
    }
}


@router.post("/v1/audio/transcriptions", responses=_RESPONSES, openapi_extra=_BODY,
             summary="Transcribe audio (OpenAI multipart or HSE JSON)")
async def transcribe(request: Request, catalog: CatalogDep, dispatcher: DispatcherDep, settings: SettingsDep,
                     preference: PreferenceDep):
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        return await _openai_call(request, "transcribe", catalog, dispatcher, settings, preference)
    if content_type.startswith("application/json"):
        try:
            body = HSETranscriptionRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            raise invalid_request(exc) from None
        model = catalog.require(body.model, TRANSCRIPTION)
        request_fields = {"audio": await read_audio(body.input_audio, settings.max_audio_seconds),
                          "task": "transcribe", "language": body.language,
                          # HSE's timestamps are faster-whisper's segments, words included
                          "word_timestamps": body.get_timestamps, "segment_times": body.get_timestamps}
        render = {"dialect": "hse", "get_language": body.get_language, "get_timestamps": body.get_timestamps}
        return await run_job(dispatcher, _plan(model.name), JobInput(request_fields), preference, render,
                             callback_url=body.callback_url)
    raise APIError(415, "send multipart/form-data (OpenAI) or application/json (HSE)", reason="unsupported_media_type")


@router.post("/v1/audio/translations", responses=_RESPONSES,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "multipart/form-data": _BODY["requestBody"]["content"]["multipart/form-data"]}}},
             summary="Translate speech into English text (OpenAI multipart; multilingual models only)")
async def translate(request: Request, catalog: CatalogDep, dispatcher: DispatcherDep, settings: SettingsDep,
                    preference: PreferenceDep):
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise APIError(415, "send multipart/form-data, as OpenAI's API does", reason="unsupported_media_type")
    return await _openai_call(request, "translate", catalog, dispatcher, settings, preference)


async def _openai_call(request, task, catalog, dispatcher, settings, preference):
    form, data = await _openai_form(request, settings.max_audio_seconds)
    model = catalog.require(form.model, TRANSCRIPTION)
    request_fields = {"audio": data, "task": task, "language": None if task == "translate" else form.language,
                      "prompt": form.prompt, "temperature": form.temperature,
                      "word_timestamps": "word" in form.timestamp_granularities}
    render = {"dialect": "openai", "format": form.response_format, "granularities": form.timestamp_granularities}
    # json and text, streamed or not, show no segment times: Whisper decodes a chunk faster without them
    request_fields["segment_times"] = form.response_format not in SEGMENTLESS_FORMATS
    if form.response_format == "diarized_json":
        return await _diarized(form, model.name, request_fields, catalog, dispatcher, preference, render)
    if form.stream:
        if form.response_format not in ("json", "text"):
            raise APIError(400, f"a streamed transcription sends text events; response_format "
                           f"'{form.response_format}' cannot be streamed (use json or text, or stream=false)",
                           reason="unsupported_stream", param="response_format")
        del request_fields["audio"]  # each piece of the audio is its own part of the job
        return await stream_transcription(dispatcher, model.name, data, request_fields, preference,
                                          {"dialect": "openai", "format": "verbose_json", "granularities": ["segment"]},
                                          form.callback_url)
    return await run_job(dispatcher, _plan(model.name), JobInput(request_fields), preference, render,
                         callback_url=form.callback_url)


async def _diarized(form: OpenAITranscriptionForm, model_name: str, request_fields: dict, catalog, dispatcher,
                    preference, render: dict):
    """Who said what: the diarization pipeline's steps, the transcription (with word times),
    then its clustering model gives each run of words to the speaker talking then."""
    if form.stream:
        raise APIError(400, "diarized_json is answered whole; ask without stream", reason="unsupported_stream",
                       param="stream")
    if len(form.known_speaker_names) != len(form.known_speaker_references):
        raise APIError(400, "known_speaker_names and known_speaker_references must pair up, one clip per name",
                       param="known_speaker_references", reason="invalid_request")
    chain = catalog.chain("diarization", DIARIZATION)
    diarizer = chain.links[-1][0].name
    references = [await read_audio(clip, KNOWN_REFERENCE_SECONDS[1] + 1, param=f"known_speaker_references.{index}")
                  for index, clip in enumerate(form.known_speaker_references)]
    # the transcription's own fields win over the pipeline's fixed ones (its VAD step's "task")
    fields = {**chain.fields, **request_fields, "word_timestamps": True,
              "known_speaker_names": form.known_speaker_names, "known_speaker_references": references}
    plan = JobPlan.build(model_name, TRANSCRIPTION,
                         [*chain.steps, (model_name, TRANSCRIPTION), (diarizer, SPEAKER_ATTRIBUTION)])
    return await run_job(dispatcher, plan, JobInput(fields), preference, render, callback_url=form.callback_url)


def _plan(model_name: str) -> JobPlan:
    return JobPlan.build(model_name, TRANSCRIPTION, [(model_name, TRANSCRIPTION)])
