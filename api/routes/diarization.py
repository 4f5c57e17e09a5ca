"""POST /v1/audio/diarization: who spoke when, on the diarization pipeline (VAD -> speaker
windows on the encoder's queue -> clustering), as one job of fleet steps."""

from __future__ import annotations

from pathlib import PurePath

from fastapi import APIRouter, Request
from pydantic import ValidationError

from api.audio_input import check_audio, read_audio
from api.deps import CatalogDep, DispatcherDep, PreferenceDep, SettingsDep
from api.errors import APIError, ErrorResponse
from api.forms import invalid_request, read_form
from api.json_requests import OrjsonRoute
from api.protocol.diarization import DiarizationOptions, DiarizationRequest, DiarizationResponse
from api.routes.common import ASYNC_RESPONSE, ERROR_RESPONSES, run_job
from jobcontract.payload import JobInput
from jobcontract.plan import JobPlan
from speechmodels.diarization import KNOWN_REFERENCE_SECONDS
from speechmodels.registry import DIARIZATION

router = APIRouter(tags=["diarization"], route_class=OrjsonRoute)
_RESPONSES = {**ERROR_RESPONSES, **ASYNC_RESPONSE,
              415: {"model": ErrorResponse, "description": "neither multipart/form-data nor application/json"}}
_LISTS = ("known_speaker_names", "known_speaker_references")


@router.post("/v1/audio/diarization", response_model=DiarizationResponse, responses=_RESPONSES,
             summary="Who spoke when (multipart with a file, or JSON with base64 audio); json or RTTM")
async def diarize(request: Request, catalog: CatalogDep, dispatcher: DispatcherDep, settings: SettingsDep,
                  preference: PreferenceDep):
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        options, uploads = await read_form(request, DiarizationOptions, _LISTS, max_files=1 + 4)
        files = uploads.get("file") or []
        if len(files) != 1:
            raise APIError(400, "send the recording as one file in the 'file' field", reason="invalid_request",
                           param="file")
        data = await check_audio(await files[0].read(), settings.max_audio_seconds, param="file")
        file_id = PurePath(files[0].filename or "audio").stem
        references = [await check_audio(await upload.read(), KNOWN_REFERENCE_SECONDS[1] + 1,
                                        param=f"known_speaker_references.{index}")
                      for index, upload in enumerate(uploads.get("known_speaker_references") or [])]
        if references and options.known_speaker_references:
            raise APIError(400, "send known speaker references as files or as data URLs, not both",
                           param="known_speaker_references", reason="invalid_request")
        if len(references or options.known_speaker_references) != len(options.known_speaker_names):
            raise APIError(400, "known_speaker_names and known_speaker_references must pair up, one clip per name",
                           param="known_speaker_references", reason="invalid_request")
    elif content_type.startswith("application/json"):
        try:
            options = DiarizationRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            raise invalid_request(exc) from None
        data = await read_audio(options.input_audio, settings.max_audio_seconds)
        file_id, references = "audio", []
        if len(options.known_speaker_references) != len(options.known_speaker_names):
            raise APIError(400, "known_speaker_names and known_speaker_references must pair up, one clip per name",
                           param="known_speaker_references", reason="invalid_request")
    else:
        raise APIError(415, "send multipart/form-data or application/json", reason="unsupported_media_type")
    references = references or [await read_audio(clip, KNOWN_REFERENCE_SECONDS[1] + 1,
                                                 param=f"known_speaker_references.{index}")
                                for index, clip in enumerate(options.known_speaker_references)]
    chain = catalog.chain(options.model, DIARIZATION)
    fields = options.model_dump(include={"num_speakers", "min_speakers", "max_speakers", "known_speaker_names"},
                                exclude_none=True)
    job_input = JobInput({**chain.fields, **fields, "audio": data, "known_speaker_references": references})
    render = {"format": options.response_format, "file": file_id}
    return await run_job(dispatcher, JobPlan.build(chain.name, DIARIZATION, chain.steps), job_input, preference,
                         render, callback_url=options.callback_url)
