"""``POST /v1/audio/transcriptions`` and ``/v1/audio/translations``: HSE's JSON body and
OpenAI's multipart fields."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from api.protocol.common import CallbackOption
from speechmodels.diarization import MAX_KNOWN_SPEAKERS


class HSETranscriptionRequest(CallbackOption):
    """HSE's SpeechTranscribeRequest."""

    model: str
    input_audio: str = Field(description="base64 audio")
    get_language: bool = False
    get_timestamps: bool = False
    language: str | None = Field(default=None, description="speechfleet extension: skip language detection")


class OpenAITranscriptionForm(CallbackOption):
    """The multipart fields of OpenAI's transcription and translation calls (besides ``file``)."""

    model: str
    language: str | None = None
    prompt: str | None = Field(default=None, max_length=2000)
    response_format: Literal["json", "text", "srt", "vtt", "verbose_json", "diarized_json"] = "json"
    temperature: float = Field(default=0.0, ge=0.0, le=1.0)
    timestamp_granularities: list[Literal["word", "segment"]] = Field(default_factory=list)
    # diarized_json: who said what (the diarization pipeline runs before the transcription)
    chunking_strategy: str | None = Field(default=None, max_length=2000, description="accepted; the diarization "
                                          "pipeline's VAD step cuts the audio")
    known_speaker_names: list[str] = Field(default_factory=list, max_length=MAX_KNOWN_SPEAKERS)
    known_speaker_references: list[str] = Field(default_factory=list, max_length=MAX_KNOWN_SPEAKERS,
                                                description="data URLs (or base64) of 2-10 s clips, one per name")
    stream: bool = Field(default=False, description="Server-Sent Events: transcript.text.delta as each piece of "
                         "the audio is transcribed, then transcript.text.done (json and text formats)")
