"""The voice library (OpenAI's Voices API shape: ``POST /v1/audio/voices`` with ``name``,
``audio_sample`` and ``consent``) and Open WebUI's discovery listings (``GET /v1/audio/models``,
``GET /v1/audio/voices``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class VoiceReference(BaseModel):
    """``voice: {"id": "voice_…"}`` on ``/v1/audio/speech``: a saved voice."""

    id: str = Field(min_length=1, max_length=64)


class SavedVoice(BaseModel):
    """A voice in the library: OpenAI's ``Voice`` plus the toolchains it has embeddings for."""

    id: str
    object: Literal["audio.voice"] = "audio.voice"
    created_at: int
    name: str
    type: Literal["audio_sample"] = "audio_sample"
    consent: str | None = None
    duration: float | None = Field(default=None, description="seconds of the reference clip")
    toolchains: list[str] = Field(default_factory=list, description="cloning toolchains with a stored embedding")


class VoiceCreateJSON(BaseModel):
    """The JSON form of ``POST /v1/audio/voices`` (multipart is OpenAI's; JSON takes base64)."""

    name: str = Field(min_length=1, max_length=64)
    audio_sample: str = Field(description="base64 audio: the reference clip")
    consent: str | None = Field(default=None, max_length=256)


class VoiceDeleted(BaseModel):
    id: str
    deleted: bool = True
    object: Literal["audio.voice.deleted"] = "audio.voice.deleted"


class VoiceEntry(BaseModel):
    id: str
    name: str


class VoiceListing(BaseModel):
    """Open WebUI reads ``voices`` (the models' own voices and the saved ones); ``data`` is the
    library in OpenAI's shape."""

    object: Literal["list"] = "list"
    voices: list[VoiceEntry] = Field(default_factory=list)
    data: list[SavedVoice] = Field(default_factory=list)


class AudioModelEntry(BaseModel):
    id: str


class AudioModelListing(BaseModel):
    models: list[AudioModelEntry] = Field(default_factory=list)
