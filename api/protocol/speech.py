"""``POST /v1/audio/speech``: HSE's TextToSpeechRequest and OpenAI's speech call, one body."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.protocol.common import (
    AudioFormatName,
    AudioOutputOptions,
    CallbackOption,
    PostGenerationFilter,
)
from api.protocol.voices import VoiceReference

# OpenAI's built-in voice names: an OpenAI client always sends one, so they mean "the model's
# default voice" rather than an error
OPENAI_STOCK_VOICES = frozenset({"alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage",
                                 "shimmer", "verse", "marin", "cedar"})
# fields only HSE's request has. Not post_generation_filters: OpenAI clients add them through
# extra_body and still expect OpenAI's answer, so a filter list says nothing about the dialect
HSE_ONLY_FIELDS = ("mode", "language", "generation_options", "output_options", "input_audio", "input_embedding",
                   "input_vad_data")


class GenerationOptions(BaseModel):
    """HSE's generation_options; a family fills in what is left unset (its own defaults)."""

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
    voice: Annotated[str, Field(max_length=128)] | VoiceReference | None = Field(
        default=None, description="a voice of the model, or a saved voice ({\"id\": \"voice_…\"} "
        "or its name) for a cloning toolchain")
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

    @field_validator("input")
    @classmethod
    def _speakable(cls, text: str) -> str:
        """The rule: control characters other than tab, newline and carriage return (NUL, escape,
        DEL, ...) and lone surrogates are refused; they are never speech and break phonemisers."""
        for index, char in enumerate(text):
            code = ord(char)
            if (code < 0x20 and char not in "\t\n\r") or 0x7F <= code < 0xA0 or 0xD800 <= code < 0xE000:
                raise ValueError(f"character U+{code:04X} at position {index} is not allowed in text to speak "
                                 "(control characters other than tab and newlines, and lone surrogates, are refused)")
        return text

    @property
    def hse_dialect(self) -> bool:
        """HSE clients get HSE's JSON envelope; OpenAI calls (none of HSE's own fields) get bytes."""
        return any(name in self.model_fields_set for name in HSE_ONLY_FIELDS)

    @property
    def streamed(self) -> bool:
        return bool(self.stream_format or (self.output_options and self.output_options.stream))
