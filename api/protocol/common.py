"""Schemas several capabilities share: callbacks, audio output options, filters, the envelope."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from jobcontract.payload import AudioOutput


class CallbackOption(BaseModel):
    """Any POST may name a URL to be told when its job ends (a signed Standard Webhooks POST)."""

    callback_url: str | None = Field(default=None, max_length=2048,
                                     description="http(s) URL that receives the finished job as a signed webhook")


AudioFormatName = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]


class AudioOutputOptions(BaseModel):
    """HSE's output_options for routes that answer with audio."""

    model_config = ConfigDict(extra="allow")

    format: AudioFormatName | None = Field(default=None, description="wav when unset")
    sample_rate: int | None = Field(default=None, ge=8_000, le=48_000, description="the model's own when unset")

    def audio_output(self, default_format: str = "wav") -> AudioOutput:
        return AudioOutput(self.format or default_format, self.sample_rate)


class PostGenerationFilter(BaseModel):
    """One of HSE's post_generation_filters: an audio conversion model (a denoiser, a restorer)
    run on the generated audio, as one more step of the same job."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(description="a configured audio conversion model, e.g. rnnoise")


class DataEnvelope(BaseModel):
    """HSE's answer for any call that returns one blob (audio, an embedding): base64 ``data``."""

    id: str
    model: str
    created: int
    data: str = Field(description="base64 of the audio file (or, for embeddings, of little-endian float32)")
