"""POST /v1/audio/speech: HSE's TextToSpeechRequest (JSON envelope with base64 audio) and
OpenAI's speech call (raw audio bytes), on one path.

Text is cut into sentences here; the job runs them as a chord across the model's workers
and joins them (``workers.assembly``), or streams them as they finish (``api.speech_stream``).
"""

from __future__ import annotations

import json
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from api.audio_input import read_audio, read_embedding, read_vad_segments
from api.deps import CatalogDep, DispatcherDep, PreferenceDep, SettingsDep
from api.errors import APIError
from api.filters import filter_stages
from api.protocol import (
    AudioFormatName,
    AudioOutputOptions,
    CallbackOption,
    PostGenerationFilter,
)
from api.routes.common import ASYNC_RESPONSE, ERROR_RESPONSES, run_job
from api.speech_stream import stream_speech
from speechmodels.encoding import AUDIO_FORMATS
from speechmodels.registry import SPEECH_SYNTHESIS
from speechmodels.tts import split_sentences
from workers.liveness import card_key

router = APIRouter(tags=["text to speech"])

# OpenAI's built-in voice names: an OpenAI client always sends one, so they mean "the model's
# default voice" rather than an error
OPENAI_STOCK_VOICES = frozenset({"alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage",
                                 "shimmer", "verse", "marin", "cedar"})
HSE_ONLY_FIELDS = ("mode", "language", "generation_options", "output_options", "input_audio", "input_embedding",
                   "input_vad_data", "post_generation_filters")


class GenerationOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    speed: float | None = Field(default=None, ge=0.25, le=4.0)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    pitch: float | None = None
    energy: float | None = None


class OutputOptions(AudioOutputOptions):
    stream: bool = Field(default=False, description="chunked audio as each sentence is ready")


class SpeechRequest(CallbackOption):
    model: str
    input: str = Field(max_length=1_000_000, description="the text; the configured maximum applies")
    voice: str | None = Field(default=None, max_length=128)
    # HSE
    mode: Literal["single_speaker_tts", "multi_speaker_tts", "voice_cloning"] | None = None
    language: str | None = Field(default=None, max_length=32)
    input_audio: str | None = Field(default=None, description="reference audio for voice cloning (toolchains)")
    input_embedding: str | None = None
    input_vad_data: str | None = Field(default=None, max_length=1_000_000,
                                       description="input_audio's speech segments (JSON, seconds), as /v1/audio/vad "
                                       "returns them: skips the toolchain's VAD step")
    generation_options: GenerationOptions | None = None
    output_options: OutputOptions | None = None
    post_generation_filters: list[PostGenerationFilter] | None = Field(default=None, max_length=8)
    # OpenAI
    response_format: AudioFormatName | None = Field(default=None, description="mp3 when unset (OpenAI calls)")
    speed: float | None = Field(default=None, ge=0.25, le=4.0)
    stream_format: Literal["audio", "sse"] | None = None
    instructions: str | None = Field(default=None, max_length=4096, description="accepted; these models ignore it")

    @property
    def hse_dialect(self) -> bool:
        """HSE clients get HSE's JSON envelope; OpenAI calls (none of HSE's own fields) get bytes."""
        return any(name in self.model_fields_set for name in HSE_ONLY_FIELDS)


class SpeechResponse(BaseModel):
    id: str
    model: str
    created: int
    data: str = Field(description="base64 of the audio file")


_AUDIO_RESPONSES = {200: {"content": {fmt.content_type: {} for fmt in AUDIO_FORMATS.values()},
                          "model": SpeechResponse,
                          "description": "raw audio (OpenAI calls) or HSE's JSON envelope with base64 audio"}}


@router.post("/v1/audio/speech", response_model=SpeechResponse,
             responses={**ERROR_RESPONSES, **ASYNC_RESPONSE, **_AUDIO_RESPONSES})
async def create_speech(body: SpeechRequest, request: Request, catalog: CatalogDep, dispatcher: DispatcherDep,
                        settings: SettingsDep, preference: PreferenceDep):
    text = body.input.strip()
    if not text:
        raise APIError(400, "input is empty: there is nothing to say", reason="empty_input", param="input")
    if len(text) > settings.max_speech_chars:
        raise APIError(400, f"input is {len(text)} characters; the limit is {settings.max_speech_chars}",
                       reason="input_too_long", param="input")
    stages = filter_stages(catalog, body.post_generation_filters)
    output = body.output_options or OutputOptions()
    hse = body.hse_dialect
    format_name = (output.format or "wav") if hse else (body.response_format or "mp3")
    generation = body.generation_options or GenerationOptions()
    shared = {"language": body.language, "speed": body.speed or generation.speed or 1.0, "seed": generation.seed,
              "output": {"format": format_name, "sample_rate": output.sample_rate}}
    render = {"dialect": "hse" if hse else "openai"}
    if catalog.is_toolchain(body.model):
        return await _clone_voice(request, body, catalog, dispatcher, settings, preference, text, shared, render,
                                  stages)
    model = catalog.require(body.model, SPEECH_SYNTHESIS, "text to speech")
    if body.mode == "voice_cloning" or body.input_audio or body.input_embedding:
        raise APIError(400, f"model '{model.name}' speaks with its own voices and cannot clone one; "
                       "clone with a toolchain such as harmonyspeech", reason="unsupported_mode", param="mode")
    voice = await _checked_voice(request, model.name, body)
    sentences = split_sentences(text)
    payload = {**shared, "voice": voice, "parts": [{"text": sentence} for sentence in sentences]}
    if body.stream_format or output.stream:
        if stages:
            raise APIError(400, "post_generation_filters work on the whole audio and cannot be streamed",
                           reason="unsupported_stream", param="post_generation_filters")
        return await stream_speech(dispatcher, model, payload, preference, render,
                                   sse=body.stream_format == "sse", callback_url=body.callback_url)
    return await run_job(dispatcher, model, SPEECH_SYNTHESIS, payload, preference, render,
                         callback_url=body.callback_url, parts=len(sentences), stages=stages)


async def _clone_voice(request: Request, body: SpeechRequest, catalog, dispatcher, settings, preference, text: str,
                       shared: dict, render: dict, stages: list[dict]):
    """A voice-cloning toolchain (harmonyspeech, openvoice_v1): the reference clip goes
    through the toolchain's VAD and encoder steps; a request that brings the embedding (or
    the clip's VAD segments) skips them."""
    provided = frozenset(name for name in ("input_embedding", "input_vad_data") if getattr(body, name))
    plan = catalog.plan(body.model, SPEECH_SYNTHESIS, "text to speech", provided=provided)
    if body.stream_format or (body.output_options and body.output_options.stream):
        raise APIError(400, f"toolchain '{body.model}' answers with the whole audio; it cannot stream",
                       reason="unsupported_stream", param="stream_format")
    # a base speaker's voice (a style, a MeloTTS speaker) is checked now, not after the VAD
    # and encoder steps have run
    voice = body.voice
    for step in plan.steps:
        if step["capability"] == SPEECH_SYNTHESIS:
            voice = await _checked_voice(request, step["model"], body)
    generation = body.generation_options or GenerationOptions()
    payload = {**shared, **plan.fields, "text": text, "voice": voice,
               "pitch": generation.pitch if generation.pitch is not None else 1.0,
               "energy": generation.energy if generation.energy is not None else 1.0}
    if body.input_embedding:
        payload["embedding"] = read_embedding(body.input_embedding, "input_embedding")
    elif body.input_audio:
        payload["audio"] = await read_audio(body.input_audio, settings.max_audio_seconds)
        if body.input_vad_data:
            payload["vad_segments"] = read_vad_segments(body.input_vad_data, settings.max_audio_seconds)
    else:
        raise APIError(400, f"toolchain '{body.model}' clones a voice: send input_audio (a reference clip) or "
                       "input_embedding", reason="missing_reference", param="input_audio")
    return await run_job(dispatcher, plan.head, SPEECH_SYNTHESIS, payload, preference, render,
                         callback_url=body.callback_url, stages=plan.stages + stages,
                         head_capability=plan.head_capability, name=plan.name)


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
