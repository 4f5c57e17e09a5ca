"""Audio in: any common container/codec, rate and channel count -> float32 mono at a target rate.

libsndfile (WAV, FLAC, OGG/Vorbis, Opus, MP3) is tried first because it reads headers
without decoding; FFmpeg through PyAV covers the rest (M4A/AAC, WebM, ...).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import soundfile
import soxr

from speechmodels.base import InputError


class AudioDecodeError(InputError):
    def __init__(self, message: str, param: str = "input_audio"):
        super().__init__(message, param=param, code="invalid_audio")


class EmptyAudioError(InputError):
    def __init__(self, param: str = "input_audio"):
        super().__init__("audio contains no samples", param=param, code="empty_audio")


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int
    channels: int
    duration_s: float | None  # None when the container does not say
    format: str


def probe(data: bytes, param: str = "input_audio") -> AudioInfo:
    """Read the header only: cheap enough for the API to reject bad audio before queueing."""
    if not data:
        raise EmptyAudioError(param)
    try:
        info = soundfile.info(io.BytesIO(data))
        info_duration = info.frames / info.samplerate if info.samplerate else None
        result = AudioInfo(info.samplerate, info.channels, info_duration, info.format)
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        result = _probe_with_ffmpeg(data, param)
    if result.duration_s == 0:
        raise EmptyAudioError(param)
    return result


def decode(data: bytes, sample_rate: int, param: str = "input_audio") -> np.ndarray:
    """Decode to float32 mono at ``sample_rate``; raises :class:`InputError` subclasses."""
    if not data:
        raise EmptyAudioError(param)
    try:
        samples, source_rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        samples, source_rate = _decode_with_ffmpeg(data, param)
    mono = samples.mean(axis=1, dtype=np.float32) if samples.shape[1] > 1 else samples[:, 0]
    if mono.size == 0:
        raise EmptyAudioError(param)
    if not np.all(np.isfinite(mono)):
        raise AudioDecodeError("audio contains NaN or infinite samples", param)
    return resample(mono, source_rate, sample_rate)


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    if source_rate == target_rate:
        return np.ascontiguousarray(samples, dtype=np.float32)
    return soxr.resample(samples, source_rate, target_rate, quality="HQ").astype(np.float32, copy=False)


def synthetic_clip(seconds: float = 2.0, sample_rate: int = 16_000) -> bytes:
    """A WAV of a rising tone in light noise: a stand-in input for warming a model up."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    tone = 0.3 * np.sin(2 * np.pi * (150 + 200 * t) * t)
    noise = 0.01 * np.random.default_rng(0).standard_normal(t.size)
    return encode_wav((tone + noise).astype(np.float32), sample_rate)


def encode_wav(samples: np.ndarray, sample_rate: int) -> bytes:
    """16-bit PCM WAV bytes (clipped, never wrapped)."""
    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(samples, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def _open_container(data: bytes, param: str):
    import av  # imported lazily: only needed for formats libsndfile does not read

    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise AudioDecodeError(f"could not decode audio: unrecognised or corrupt data ({exc.__class__.__name__})", param) from None
    if not container.streams.audio:
        container.close()
        raise AudioDecodeError("the file has no audio stream", param)
    return container


def _probe_with_ffmpeg(data: bytes, param: str) -> AudioInfo:
    container = _open_container(data, param)
    with container:
        stream = container.streams.audio[0]
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        return AudioInfo(stream.rate or 0, stream.channels or 0, duration, container.format.name)


def _decode_with_ffmpeg(data: bytes, param: str) -> tuple[np.ndarray, int]:
    import av

    container = _open_container(data, param)
    with container:
        stream = container.streams.audio[0]
        # packed float32 keeps channels interleaved: one reshape gives (frames, channels)
        resampler = av.AudioResampler(format="flt", layout=stream.layout.name if stream.layout else "mono", rate=stream.rate)
        chunks: list[np.ndarray] = []
        channels = stream.channels or 1
        try:
            for frame in container.decode(stream):
                for converted in resampler.resample(frame):
                    chunks.append(converted.to_ndarray().reshape(-1, channels))
            for converted in resampler.resample(None):
                chunks.append(converted.to_ndarray().reshape(-1, channels))
        except (av.FFmpegError, ValueError) as exc:
            raise AudioDecodeError(f"could not decode audio: {exc.__class__.__name__}", param) from None
        if not chunks:
            raise EmptyAudioError(param)
        return np.concatenate(chunks).astype(np.float32, copy=False), int(stream.rate)
