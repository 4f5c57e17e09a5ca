"""One declaration per capability, read by both sides: what a later step reads from its
output, how that output travels between steps, how it becomes a job's result, how parts
are joined, where the API lists the models that do it and how it presents the result.

Adding a capability is its route, its protocol module and one entry here.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from speechmodels.audio import resample
from speechmodels.encoding import AUDIO_FORMATS, encode_audio
from speechmodels.registry import (
    AUDIO_CONVERSION,
    DIARIZATION,
    MEL_RESTORATION,
    MEL_SYNTHESIS,
    MEL_VOCODING,
    SPEAKER_ATTRIBUTION,
    SPEAKER_EMBEDDING,
    SPEAKER_WINDOWS,
    SPEECH_SYNTHESIS,
    TRANSCRIPTION,
    VAD,
    VOICE_CONVERSION,
)
from speechmodels.stt import TranscribedSegment, TranscribedWord, Transcription
from speechmodels.tts import SynthesizedSpeech, join_sentences

if TYPE_CHECKING:
    from jobcontract.payload import JobInput


@dataclass(frozen=True)
class Encoded:
    result: dict[str, Any]  # the job's JSON result, kept in its record
    data: bytes | None = None  # its binary side (audio), kept beside the record


@dataclass(frozen=True)
class Capability:
    name: str
    label: str  # what error messages call it ("text to speech")
    #: the request field its output fills in a later step of the same job (None: never an
    #: intermediate step)
    next_field: str | None = None
    #: output -> bytes, kept for later steps (a family's own intermediate type packs itself
    #: with its ``to_bytes``, as the mels of HarmonySpeech and VoiceFixer do)
    pack: Callable[[Any], bytes] = lambda output: output.to_bytes()
    #: bytes -> output, where the API or a join reads a step's output back (speech)
    unpack: Callable[[bytes], Any] | None = None
    #: output -> the job's result, when a job ends with this capability
    encode: Callable[[Any, JobInput], Encoded] | None = None
    #: the outputs of a job's parts -> one output (text split into sentences)
    join: Callable[[list[Any]], Any] | None = None
    #: the GET path listing the models that do it (HSE's listings)
    listing: str | None = None
    #: how the API presents a finished job: "json" (the envelope plus the result's fields),
    #: "audio" (raw bytes or HSE's base64 envelope), "transcript" (HSE's or OpenAI's formats)
    render: str = "json"


def _voice_activity(output: Any, job_input: JobInput) -> Encoded:
    timestamps = None
    if output.timestamps is not None:
        timestamps = [{"start": start, "end": end} for start, end in output.timestamps]
    return Encoded({"speech_activity": output.speech_activity, "timestamps": timestamps})


def _embedding_bytes(output: np.ndarray) -> bytes:
    return np.asarray(output, dtype="<f4").tobytes()


def _embedding(output: np.ndarray, job_input: JobInput) -> Encoded:
    return Encoded({"data": base64.b64encode(_embedding_bytes(output)).decode("ascii")})


def _transcription(output: Any, job_input: JobInput) -> Encoded:
    return Encoded(dataclasses.asdict(output))  # text, language, duration, task, segments[words]


def _transcription_bytes(output: Transcription) -> bytes:
    return json.dumps(dataclasses.asdict(output)).encode()


def _transcription_from_bytes(data: bytes) -> Transcription:
    fields = json.loads(data)
    segments = [TranscribedSegment(**{**segment, "words": None if segment.get("words") is None else
                                      [TranscribedWord(**word) for word in segment["words"]]})
                for segment in fields.pop("segments", [])]
    return Transcription(**fields, segments=segments)


def join_transcriptions(parts: list[Transcription]) -> Transcription:
    """The transcripts of consecutive pieces of one audio (the API cuts it so that the pieces
    tile it) as one: each piece's times shifted by the durations before it, segments
    renumbered, the language the one most pieces were heard in."""
    segments: list[TranscribedSegment] = []
    offset = 0.0
    for part in parts:
        for segment in part.segments:
            words = None if segment.words is None else [
                dataclasses.replace(word, start=round(word.start + offset, 3), end=round(word.end + offset, 3))
                for word in segment.words]
            segments.append(dataclasses.replace(segment, id=len(segments), start=round(segment.start + offset, 3),
                                                end=round(segment.end + offset, 3), words=words))
        offset += part.duration
    languages = [part.language for part in parts if part.text.strip()] or [part.language for part in parts]
    language = max(dict.fromkeys(languages), key=languages.count) if languages else "en"
    text = " ".join(part.text.strip() for part in parts if part.text.strip())
    return Transcription(text=text, language=language, duration=round(offset, 3),
                         task=parts[0].task if parts else "transcribe", segments=segments)


def _diarization(output: Any, job_input: JobInput) -> Encoded:
    return Encoded({"duration": output.duration,
                    "segments": [{"start": start, "end": end, "speaker": speaker}
                                 for start, end, speaker in output.segments]})


def _diarized_transcript(output: Any, job_input: JobInput) -> Encoded:
    """OpenAI's ``diarized_json``."""
    segments = [{"type": "transcript.text.segment", "id": f"seg_{index}", **turn}
                for index, turn in enumerate(output.segments)]
    return Encoded({"task": output.task, "duration": output.duration, "text": output.text, "segments": segments,
                    "usage": {"type": "duration", "seconds": round(output.duration, 3)}})


def encode_speech(output: SynthesizedSpeech, job_input: JobInput) -> Encoded:
    """Audio in the format and sample rate the request asked for (wav at the model's rate
    by default)."""
    from jobcontract.payload import AudioOutput

    options = job_input.output or AudioOutput()
    rate = int(options.sample_rate or output.sample_rate)
    data = encode_audio(resample(output.samples, output.sample_rate, rate), rate, options.format)
    return Encoded({"format": options.format, "content_type": AUDIO_FORMATS[options.format].content_type,
                    "sample_rate": rate, "duration": round(output.seconds, 3), "bytes": len(data)}, data)


def _audio(name: str, label: str, **fields: Any) -> Capability:
    """A capability whose output is audio: it travels between steps as float WAV (lossless,
    and what an audio family's ``prepare`` decodes) and ends a job as encoded audio."""
    return Capability(name, label, next_field="audio", unpack=SynthesizedSpeech.from_bytes, encode=encode_speech,
                      render="audio", **fields)


CAPABILITIES: dict[str, Capability] = {c.name: c for c in (
    # segments as JSON [[start, end], ...] between steps (seconds: toolchain VAD steps ask for them)
    Capability(VAD, "voice activity detection", next_field="vad_segments",
               pack=lambda activity: json.dumps(activity.timestamps or []).encode(), encode=_voice_activity,
               listing="/v1/audio/vad/models"),
    Capability(SPEAKER_EMBEDDING, "speaker embedding", next_field="embedding", pack=_embedding_bytes,
               encode=_embedding, listing="/v1/embed/models"),
    # a long file's pieces (streamed transcriptions) travel as JSON and are joined in order
    Capability(TRANSCRIPTION, "speech-to-text", next_field="transcript", pack=_transcription_bytes, unpack=_transcription_from_bytes,
               encode=_transcription, join=join_transcriptions, listing="/v1/audio/transcriptions/models",
               render="transcript"),
    _audio(SPEECH_SYNTHESIS, "text to speech", join=join_sentences, listing="/v1/audio/speech/models"),
    _audio(AUDIO_CONVERSION, "audio conversion", listing="/v1/audio/convert/models"),
    _audio(VOICE_CONVERSION, "voice conversion", listing="/v1/voice/convert/models"),
    Capability(DIARIZATION, "diarization", next_field="diarization", encode=_diarization,
               listing="/v1/audio/diarization/models", render="diarization"),
    # steps that only run inside toolchains
    Capability(SPEAKER_WINDOWS, "speaker windows", next_field="windows"),
    Capability(SPEAKER_ATTRIBUTION, "speaker attribution", encode=_diarized_transcript),
    _audio(MEL_VOCODING, "mel vocoding"),
    Capability(MEL_SYNTHESIS, "mel synthesis", next_field="mel"),
    Capability(MEL_RESTORATION, "mel restoration", next_field="mel"),
)}


def capability(name: str) -> Capability:
    return CAPABILITIES[name]
