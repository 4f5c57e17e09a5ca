"""``POST /v1/voice/convert``: the words of one recording in the voice of another (answered
with ``DataEnvelope``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from api.protocol.common import AudioOutputOptions, CallbackOption, PostGenerationFilter


class ConversionOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    tau: float | None = Field(default=None, ge=0.0, le=1.0,
                              description="latent sampling temperature (the converter's own default when unset)")


class VoiceConvertRequest(CallbackOption):
    model: str = Field(description="a tone converter toolchain (openvoice_v2) or converter model")
    source_audio: str = Field(description="base64 audio whose words are kept")
    target_audio: str | None = Field(default=None, description="base64 audio of the voice to convert to")
    target_embedding: str | None = Field(default=None, description="base64 float32 tone colour embedding instead")
    input_vad_data: str | None = Field(default=None, max_length=1_000_000,
                                       description="target_audio's speech segments (JSON, seconds), "
                                       "as /v1/audio/vad returns them: skips the toolchain's VAD step")
    generation_options: ConversionOptions | None = None
    output_options: AudioOutputOptions | None = None
    post_generation_filters: list[PostGenerationFilter] | None = Field(default=None, max_length=8)
