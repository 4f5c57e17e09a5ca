"""``POST /v1/embed/speaker`` (answered with ``DataEnvelope``: base64 little-endian float32)."""

from __future__ import annotations

from pydantic import Field

from api.protocol.common import CallbackOption


class EmbedSpeakerRequest(CallbackOption):
    model: str = Field(description="a configured speaker encoder (e.g. harmonyspeech-encoder) or a toolchain with one")
    input_audio: str = Field(description="base64 audio of one speaker")
