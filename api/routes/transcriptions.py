"""POST /v1/audio/transcriptions (HSE JSON or OpenAI multipart, by Content-Type) and
POST /v1/audio/translations (OpenAI multipart); ``stream=true`` on either (OpenAI multipart)
streams the transcript piece by piece (``api.transcription_stream``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from api.audio_input import check_audio, read_audio
from api.deps import CatalogDep, DispatcherDep, PreferenceDep, SettingsDep
from api.errors import APIError, ErrorResponse
from api.protocol.transcription import HSETranscriptionRequest, OpenAITranscriptionForm
from api.routes.common import ASYNC_RESPONSE, ERROR_RESPONSES, run_job
from api.transcription_stream import stream_transcription
from jobcontract.payload import JobInput
from jobcontract.plan import JobPlan
from speechmodels.registry import TRANSCRIPTION

router = APIRouter(tags=["speech to text"])
_RESPONSES = {**ERROR_RESPONSES, **ASYNC_RESPONSE,
              415: {"model": ErrorResponse, "description": "neither multipart/form-data nor application/json"}}


def _invalid(exc: ValidationError) -> APIError:
    first = exc.errors()[0]
    param = ".".join(str(part) for part in first["loc"]) or None
    return APIError(400, f"{param}: {first['msg']}" if param else first["msg"], reason="invalid_request", param=param)


async def _openai_form(request: Request, max_seconds: float) -> tuple[OpenAITranscriptionForm, bytes]:
    try:
        form = await request.form(max_files=1, max_fields=32)
    except MultiPartException as exc:
        raise APIError(400, f"malformed multipart body: {exc.message}", reason="invalid_multipart") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise APIError(400, "the audio must be sent as a file in the 'file' field", reason="invalid_request",
                       param="file")
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    granularities = form.getlist("timestamp_granularities[]") or form.getlist("timestamp_granularities")
    try:
        parsed = OpenAITranscriptionForm.model_validate({**fields, "timestamp_granularities": granularities})
    except ValidationError as exc:
        raise _invalid(exc) from None
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
            raise _invalid(exc) from None
        model = catalog.require(body.model, TRANSCRIPTION)
        request_fields = {"audio": await read_audio(body.input_audio, settings.max_audio_seconds),
                          "task": "transcribe", "language": body.language}
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


def _plan(model_name: str) -> JobPlan:
    return JobPlan.build(model_name, TRANSCRIPTION, [(model_name, TRANSCRIPTION)])
