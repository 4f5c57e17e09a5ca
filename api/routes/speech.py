"""POST /v1/audio/speech: HSE's TextToSpeechRequest (JSON envelope with base64 audio) and
OpenAI's speech call (raw audio bytes), on one path.

A model's text is cut into sentences here; the job runs them as parts across the model's
workers and joins them, or streams them as they finish (``api.speech_stream``). A toolchain
(voice cloning) runs its steps in order on the whole text.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request

from api.audio_input import read_audio, read_embedding, read_vad_segments
from api.deps import CatalogDep, DispatcherDep, PreferenceDep, SettingsDep
from api.errors import APIError
from api.filters import filter_steps
from api.json_requests import OrjsonRoute
from api.protocol.common import DataEnvelope
from api.protocol.speech import (
    OPENAI_STOCK_VOICES,
    GenerationOptions,
    OutputOptions,
    SpeechRequest,
)
from api.protocol.voices import VoiceReference
from api.routes.common import ASYNC_RESPONSE, ERROR_RESPONSES, run_job
from api.routes.voices import VOICE_ID_PREFIX, cloning_toolchains, with_saved_voice
from api.speech_stream import stream_speech
from jobcontract.keys import card_key
from jobcontract.payload import AudioOutput, JobInput
from jobcontract.plan import JobPlan
from speechmodels.encoding import AUDIO_FORMATS
from speechmodels.registry import SPEECH_SYNTHESIS
from speechmodels.tts import split_sentences

router = APIRouter(tags=["text to speech"], route_class=OrjsonRoute)

_AUDIO_RESPONSES = {200: {"content": {fmt.content_type: {} for fmt in AUDIO_FORMATS.values()},
                          "model": DataEnvelope,
                          "description": "raw audio (OpenAI calls) or HSE's JSON envelope with base64 audio"}}


@router.post("/v1/audio/speech", response_model=DataEnvelope,
             responses={**ERROR_RESPONSES, **ASYNC_RESPONSE, **_AUDIO_RESPONSES})
async def create_speech(body: SpeechRequest, request: Request, catalog: CatalogDep, dispatcher: DispatcherDep,
                        settings: SettingsDep, preference: PreferenceDep):
    text = body.input.strip()
    if not text:
        raise APIError(400, "input is empty: there is nothing to say", reason="empty_input", param="input")
    if len(text) > settings.max_speech_chars:
        raise APIError(400, f"input is {len(text)} characters; the limit is {settings.max_speech_chars}",
                       reason="input_too_long", param="input")
    filters = filter_steps(catalog, body.post_generation_filters)
    if filters and body.streamed:
        raise APIError(400, "post_generation_filters work on the whole audio and cannot be streamed",
                       reason="unsupported_stream", param="post_generation_filters")
    hse = body.hse_dialect
    options = body.output_options or OutputOptions()
    output = AudioOutput((options.format or "wav") if hse else (body.response_format or "mp3"), options.sample_rate)
    generation = body.generation_options or GenerationOptions()
    # what the caller left unset is the family's own default (pitch 1, energy 1, ...); unknown
    # options are not passed on: they could stand in for fields only steps may fill
    shared = {**generation.model_dump(include={"seed", "pitch", "energy"}, exclude_none=True),
              "language": body.language, "speed": body.speed or generation.speed or 1.0}
    render = {"dialect": "hse" if hse else "openai"}
    if catalog.is_toolchain(body.model):
        body = await with_saved_voice(request, body)  # a saved voice brings its stored embedding
        return await _clone_voice(request, body, catalog, dispatcher, settings, preference,
                                  {**shared, "text": text}, output, render, filters)
    model = catalog.require(body.model, SPEECH_SYNTHESIS)
    if isinstance(body.voice, VoiceReference) or (body.voice or "").startswith(VOICE_ID_PREFIX):
        raise APIError(400, f"a saved voice is spoken by a voice-cloning toolchain ({', '.join(cloning_toolchains(catalog)) or 'none configured here'}), "
                       f"not by model '{model.name}'", reason="unsupported_voice", param="voice")
    if body.mode == "voice_cloning" or body.input_audio or body.input_embedding:
        raise APIError(400, f"model '{model.name}' speaks with its own voices and cannot clone one; "
                       "clone with a toolchain such as harmonyspeech", reason="unsupported_mode", param="mode")
    shared["voice"] = await _checked_voice(request, model.name, body)
    sentences = split_sentences(text)
    plan = JobPlan.build(model.name, SPEECH_SYNTHESIS, [(model.name, SPEECH_SYNTHESIS), *filters],
                         parts=len(sentences), streamed=body.streamed)
    job_input = JobInput(shared, parts=[{"text": sentence} for sentence in sentences], output=output)
    if body.streamed:
        return await stream_speech(dispatcher, plan, job_input, preference, render,
                                   sse=body.stream_format == "sse", callback_url=body.callback_url)
    return await run_job(dispatcher, plan, job_input, preference, render, callback_url=body.callback_url)


async def _clone_voice(request: Request, body: SpeechRequest, catalog, dispatcher, settings, preference,
                       shared: dict, output: AudioOutput, render: dict, filters: list[tuple[str, str]]):
    """A voice-cloning toolchain (harmonyspeech, openvoice_v1): the reference clip goes
    through the toolchain's VAD and encoder steps; a request that brings the embedding (or
    the clip's VAD segments) skips them."""
    provided = frozenset(name for name in ("input_embedding", "input_vad_data") if getattr(body, name))
    chain = catalog.chain(body.model, SPEECH_SYNTHESIS, provided=provided)
    if body.streamed:
        raise APIError(400, f"toolchain '{body.model}' answers with the whole audio; it cannot stream",
                       reason="unsupported_stream", param="stream_format")
    # a base speaker's voice (a style, a MeloTTS speaker) is checked now, not after the VAD
    # and encoder steps have run
    voice = body.voice
    for model, step_capability in chain.links:
        if step_capability == SPEECH_SYNTHESIS:
            voice = await _checked_voice(request, model.name, body)
    fields = {**shared, **chain.fields, "voice": voice}
    if body.input_embedding:
        fields["embedding"] = read_embedding(body.input_embedding, "input_embedding")
    elif body.input_audio:
        fields["audio"] = await read_audio(body.input_audio, settings.max_audio_seconds)
        if body.input_vad_data:
            fields["vad_segments"] = read_vad_segments(body.input_vad_data, settings.max_audio_seconds)
    else:
        raise APIError(400, f"toolchain '{body.model}' clones a voice: send input_audio (a reference clip) or "
                       "input_embedding", reason="missing_reference", param="input_audio")
    plan = JobPlan.build(chain.name, SPEECH_SYNTHESIS, chain.steps + filters)
    return await run_job(dispatcher, plan, JobInput(fields, output=output), preference, render,
                         callback_url=body.callback_url)


async def _checked_voice(request: Request, model_name: str, body: SpeechRequest) -> str | None:
    """The voice to ask the model for; a 400 now for a voice the model's workers said they do
    not have (without a published card, the worker checks)."""
    voice = body.voice
    if voice is None or (not body.hse_dialect and voice.lower() in OPENAI_STOCK_VOICES):
        return None
    raw = await request.app.state.redis.get(card_key(model_name))
    known = json.loads(raw).get("voices") if raw else None
    if known and voice not in known:
        raise APIError(400, f"voice '{voice}' is not one of model '{model_name}''s voices: {sorted(known)}",
                       reason="unknown_voice", param="voice")
    return voice
