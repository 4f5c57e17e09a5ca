"""Model outputs -> what a job keeps: the JSON fields of the capability's response (stored
in the job record) and, for capabilities that produce audio, the encoded audio beside it.
Also the form outputs take between the steps of one job (chord parts, a step feeding the next).

Keyed by capability, not by family: every VAD family answers with the same fields.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import soundfile

from speechmodels.audio import resample
from speechmodels.encoding import AUDIO_FORMATS, encode_audio
from speechmodels.families.harmonyspeech_synthesizer.model import SynthesizedMel
from speechmodels.families.voicefixer.model import RestoredMel
from speechmodels.registry import (
    AUDIO_CONVERSION,
    MEL_RESTORATION,
    MEL_SYNTHESIS,
    MEL_VOCODING,
    SPEAKER_EMBEDDING,
    SPEECH_SYNTHESIS,
    TRANSCRIPTION,
    VAD,
    VOICE_CONVERSION,
)
from speechmodels.tts import SynthesizedSpeech


@dataclass(frozen=True)
class Encoded:
    result: dict[str, Any]  # the job's JSON result
    data: bytes | None = None  # its binary side (audio), kept beside the record


def _voice_activity(output: Any, request: dict) -> Encoded:
    timestamps = None
    if output.timestamps is not None:
        timestamps = [{"start": start, "end": end} for start, end in output.timestamps]
    return Encoded({"speech_activity": output.speech_activity, "timestamps": timestamps})


def _embedding(output: np.ndarray, request: dict) -> Encoded:
    vector = np.asarray(output, dtype="<f4")
    return Encoded({"data": base64.b64encode(vector.tobytes()).decode("ascii")})


def _transcription(output: Any, request: dict) -> Encoded:
    return Encoded(dataclasses.asdict(output))  # text, language, duration, task, segments[words]


def render_audio(output: SynthesizedSpeech, request: dict) -> Encoded:
    """Audio in the format and sample rate the request asked for (``request["output"]``)."""
    options = request.get("output") or {}
    format_name = options.get("format") or "wav"
    rate = int(options.get("sample_rate") or output.sample_rate)
    data = encode_audio(resample(output.samples, output.sample_rate, rate), rate, format_name)
    return Encoded({"format": format_name, "content_type": AUDIO_FORMATS[format_name].content_type,
                    "sample_rate": rate, "duration": round(output.seconds, 3), "bytes": len(data)}, data)


RESULT_ENCODERS: dict[str, Callable[[Any, dict], Encoded]] = {
    VAD: _voice_activity,
    SPEAKER_EMBEDDING: _embedding,
    TRANSCRIPTION: _transcription,
    SPEECH_SYNTHESIS: render_audio,
    AUDIO_CONVERSION: render_audio,
    MEL_VOCODING: render_audio,
    VOICE_CONVERSION: render_audio,
}


def encode_result(capability: str, output: Any, request: dict) -> Encoded:
    return RESULT_ENCODERS[capability](output, request)


# between steps, audio travels as 32-bit float WAV: lossless, and exactly what an audio
# family's ``prepare`` decodes, so a step's output can be the next step's ``audio``
def pack_audio(output: SynthesizedSpeech) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, np.asarray(output.samples, dtype=np.float32), output.sample_rate, format="WAV",
                    subtype="FLOAT")
    return buffer.getvalue()


def unpack_audio(data: bytes) -> SynthesizedSpeech:
    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    return SynthesizedSpeech(samples, rate)


INTERMEDIATE: dict[str, tuple[Callable[[Any], bytes], Callable[[bytes], Any]]] = {
    SPEECH_SYNTHESIS: (pack_audio, unpack_audio),
    AUDIO_CONVERSION: (pack_audio, unpack_audio),
    MEL_VOCODING: (pack_audio, unpack_audio),
    VOICE_CONVERSION: (pack_audio, unpack_audio),
    MEL_RESTORATION: (RestoredMel.to_bytes, RestoredMel.from_bytes),
    MEL_SYNTHESIS: (SynthesizedMel.to_bytes, SynthesizedMel.from_bytes),
    SPEAKER_EMBEDDING: (lambda vector: np.asarray(vector, dtype="<f4").tobytes(), lambda data: np.frombuffer(data, "<f4")),
    # speech segments as JSON [[start, end], ...] (seconds: toolchain VAD steps ask for them)
    VAD: (lambda activity: json.dumps(activity.timestamps or []).encode(), json.loads),
}

# the request field a step's output fills in the next step's request
NEXT_STEP_FIELD: dict[str, str] = {
    SPEECH_SYNTHESIS: "audio",
    AUDIO_CONVERSION: "audio",
    MEL_VOCODING: "audio",
    VOICE_CONVERSION: "audio",
    MEL_RESTORATION: "mel",
    MEL_SYNTHESIS: "mel",
    SPEAKER_EMBEDDING: "embedding",
    VAD: "vad_segments",
}


def pack_intermediate(capability: str, output: Any) -> bytes:
    return INTERMEDIATE[capability][0](output)


def unpack_intermediate(capability: str, data: bytes) -> Any:
    return INTERMEDIATE[capability][1](data)
