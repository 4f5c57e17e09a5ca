"""Jobs split into parts: how a part's output is stored between steps, and how the join step
assembles the parts into the job's result. Keyed by capability, like ``workers.wire``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

from speechmodels.audio import resample
from speechmodels.encoding import AUDIO_FORMATS, encode_audio
from speechmodels.registry import SPEECH_SYNTHESIS
from speechmodels.tts import SynthesizedSpeech, join_segments

SENTENCE_PAUSE_MS = 250.0


def _pack_speech(output: SynthesizedSpeech) -> bytes:
    return msgpack.packb({"sample_rate": output.sample_rate,
                          "pcm": np.asarray(output.samples, dtype="<f4").tobytes()}, use_bin_type=True)


def _unpack_speech(data: bytes) -> SynthesizedSpeech:
    fields = msgpack.unpackb(data, raw=False)
    return SynthesizedSpeech(np.frombuffer(fields["pcm"], dtype="<f4"), int(fields["sample_rate"]))


@dataclass(frozen=True)
class Assembled:
    result: dict[str, Any]  # the job's JSON result
    data: bytes  # its binary output


def render_speech(speech: SynthesizedSpeech, output_options: dict) -> tuple[bytes, int, str]:
    """Synthesised audio in the requested format and sample rate: (bytes, rate, format)."""
    format_name = output_options.get("format") or "wav"
    rate = int(output_options.get("sample_rate") or speech.sample_rate)
    samples = resample(speech.samples, speech.sample_rate, rate)
    return encode_audio(samples, rate, format_name), rate, format_name


def _assemble_speech(parts: list[SynthesizedSpeech], request: dict) -> Assembled:
    rate = parts[0].sample_rate
    joined = SynthesizedSpeech(join_segments([part.samples for part in parts], rate, SENTENCE_PAUSE_MS), rate)
    data, out_rate, format_name = render_speech(joined, request.get("output") or {})
    return Assembled({"format": format_name, "content_type": AUDIO_FORMATS[format_name].content_type,
                      "sample_rate": out_rate, "duration": round(joined.seconds, 3), "bytes": len(data),
                      "sentences": len(parts)}, data)


@dataclass(frozen=True)
class PartCodec:
    pack: Callable[[Any], bytes]
    unpack: Callable[[bytes], Any]
    assemble: Callable[[list[Any], dict], Assembled]


PART_CODECS: dict[str, PartCodec] = {
    SPEECH_SYNTHESIS: PartCodec(_pack_speech, _unpack_speech, _assemble_speech),
}
