"""``POST /v1/audio/convert``: audio in, audio out (answered with ``DataEnvelope``)."""

from __future__ import annotations

from pydantic import Field

from api.protocol.common import AudioOutputOptions, CallbackOption, PostGenerationFilter


class AudioConvertRequest(CallbackOption):
    model: str = Field(description="an audio conversion model (e.g. rnnoise) or toolchain (voicefixer)")
    source_audio: str = Field(description="base64 audio to convert")
    output_options: AudioOutputOptions | None = None
    post_generation_filters: list[PostGenerationFilter] | None = Field(
        default=None, max_length=8, description="more conversion models to run after this one, in order")
