"""Synthesised audio -> the bytes of a response format (OpenAI's six, which HSE's
``output_options.format`` also accepts).

wav and flac go through libsndfile; mp3, opus (in Ogg) and aac (ADTS) through ffmpeg's
encoders as PyAV ships them; pcm is raw 16-bit little-endian mono, as OpenAI sends it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from speechmodels.audio import encode_wav, resample

# opus only runs at these rates; anything else is resampled to 48 kHz for it
_OPUS_RATES = (8_000, 12_000, 16_000, 24_000, 48_000)


@dataclass(frozen=True)
class AudioFormat:
    name: str
    content_type: str
    encode: Callable[[np.ndarray, int], bytes]
    #: chunks encoded one by one still concatenate into one playable stream
    streamable: bool = False


def _int16(samples: np.ndarray) -> np.ndarray:
    # clip before converting: a float past full scale must saturate, not wrap around
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")


def _pcm(samples: np.ndarray, sample_rate: int) -> bytes:
    return _int16(samples).tobytes()


def _soundfile(container: str, subtype: str) -> Callable[[np.ndarray, int], bytes]:
    def encode(samples: np.ndarray, sample_rate: int) -> bytes:
        buffer = io.BytesIO()
        sf.write(buffer, np.clip(samples, -1.0, 1.0), sample_rate, format=container, subtype=subtype)
        return buffer.getvalue()

    return encode


def _ffmpeg(container: str, codec: str, bit_rate: int) -> Callable[[np.ndarray, int], bytes]:
    def encode(samples: np.ndarray, sample_rate: int) -> bytes:
        import av

        if codec == "libopus" and sample_rate not in _OPUS_RATES:
            samples, sample_rate = resample(samples, sample_rate, 48_000), 48_000
        buffer = io.BytesIO()
        with av.open(buffer, mode="w", format=container) as output:
            stream = output.add_stream(codec, rate=sample_rate, layout="mono")
            stream.bit_rate = bit_rate
            frame = av.AudioFrame.from_ndarray(_int16(samples)[np.newaxis, :], format="s16", layout="mono")
            frame.sample_rate = sample_rate
            for packet in stream.encode(frame):
                output.mux(packet)
            for packet in stream.encode(None):  # flush the encoder's delay
                output.mux(packet)
        return buffer.getvalue()

    return encode


AUDIO_FORMATS: dict[str, AudioFormat] = {
    "wav": AudioFormat("wav", "audio/wav", encode_wav),
    "flac": AudioFormat("flac", "audio/flac", _soundfile("FLAC", "PCM_16")),
    "mp3": AudioFormat("mp3", "audio/mpeg", _ffmpeg("mp3", "libmp3lame", 128_000), streamable=True),
    "opus": AudioFormat("opus", "audio/ogg", _ffmpeg("ogg", "libopus", 64_000)),
    "aac": AudioFormat("aac", "audio/aac", _ffmpeg("adts", "aac", 128_000), streamable=True),
    "pcm": AudioFormat("pcm", "audio/pcm", _pcm, streamable=True),
}


def encode_audio(samples: np.ndarray, sample_rate: int, format_name: str) -> bytes:
    """Mono float samples in [-1, 1] as a complete file (or raw stream) of ``format_name``."""
    return AUDIO_FORMATS[format_name].encode(np.asarray(samples, dtype=np.float32), sample_rate)


def streaming_wav_header(sample_rate: int) -> bytes:
    """A 16-bit mono WAV header for a stream of unknown length (sizes set to the maximum, as
    streaming players expect), to be followed by raw pcm chunks."""
    unknown = 0xFFFFFFFF
    header = io.BytesIO()
    header.write(b"RIFF" + unknown.to_bytes(4, "little") + b"WAVEfmt ")
    header.write((16).to_bytes(4, "little") + (1).to_bytes(2, "little") + (1).to_bytes(2, "little"))
    header.write(sample_rate.to_bytes(4, "little") + (sample_rate * 2).to_bytes(4, "little"))
    header.write((2).to_bytes(2, "little") + (16).to_bytes(2, "little"))
    header.write(b"data" + unknown.to_bytes(4, "little"))
    return header.getvalue()
