"""Audio in: any common container/codec, rate and channel count -> float32 mono at a target rate.

libsndfile (WAV, FLAC, OGG/Vorbis, Opus, MP3) is tried first because it reads headers
without decoding; FFmpeg through PyAV covers the rest (M4A/AAC, WebM, ...).
"""

from __future__ import annotations

import io
import itertools
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


class AudioTooLongError(InputError):
    def __init__(self, max_seconds: float, param: str = "input_audio"):
        super().__init__(f"{param} is longer than the limit of {max_seconds:g}s", param=param,
                         code="audio_too_long", status=413)


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int
    channels: int
    duration_s: float | None  # None when the container does not say
    format: str


def probe(data: bytes, param: str = "input_audio") -> AudioInfo:
    """Read the header only: cheap enough for the API to reject bad audio before queueing.

    A header's duration can be an estimate (raw AAC, VBR MP3): ``decode`` enforces the real one.
    """
    if not data:
        raise EmptyAudioError(param)
    try:
        info = soundfile.info(io.BytesIO(data))
        info_duration = info.frames / info.samplerate if info.samplerate else None
        result = AudioInfo(info.samplerate, info.channels, info_duration, info.format)
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        result = _probe_with_ffmpeg(data, param)
    if result.sample_rate <= 0 or result.channels <= 0:
        raise AudioDecodeError(f"{param} declares {result.channels} channels at {result.sample_rate} Hz", param)
    if result.duration_s == 0:
        raise EmptyAudioError(param)
    return result


def decode(data: bytes, sample_rate: int, param: str = "input_audio", max_seconds: float | None = None) -> np.ndarray:
    """Decode to float32 mono at ``sample_rate``; raises :class:`InputError` subclasses.

    ``max_seconds`` is enforced on the decoded audio, stopping early, so a file that lies
    about its length in its header cannot make a worker decode hours of audio.
    """
    if not data:
        raise EmptyAudioError(param)
    try:
        samples, source_rate = _decode_with_libsndfile(data, param, max_seconds)
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        samples, source_rate = _decode_with_ffmpeg(data, param, max_seconds)
    if source_rate <= 0 or samples.shape[1] == 0:
        raise AudioDecodeError(f"{param} declares {samples.shape[1]} channels at {source_rate} Hz", param)
    mono = samples.mean(axis=1, dtype=np.float32) if samples.shape[1] > 1 else samples[:, 0]
    if not np.all(np.isfinite(mono)):
        raise AudioDecodeError("audio contains NaN or infinite samples", param)
    resampled = resample(mono, source_rate, sample_rate) if mono.size else mono
    if resampled.size == 0:
        raise EmptyAudioError(param)
    return resampled


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


def _decode_with_libsndfile(data: bytes, param: str, max_seconds: float | None) -> tuple[np.ndarray, int]:
    with soundfile.SoundFile(io.BytesIO(data)) as file:
        if file.samplerate <= 0 or file.channels <= 0:
            raise AudioDecodeError(f"{param} declares {file.channels} channels at {file.samplerate} Hz", param)
        limit = None if max_seconds is None else int(max_seconds * file.samplerate) + 1
        samples = file.read(frames=-1 if limit is None else limit, dtype="float32", always_2d=True)
        if limit is not None and len(samples) >= limit:
            raise AudioTooLongError(max_seconds, param)
        return samples, file.samplerate


def _open_container(data: bytes, param: str):
    import av  # imported lazily: only needed for formats libsndfile does not read

    try:
        container = av.open(io.BytesIO(data), mode="r")
    except Exception as exc:  # FFmpeg raises many types for hostile input; all mean "not audio we can read"
        raise AudioDecodeError(f"could not decode audio: unrecognised or corrupt data ({exc.__class__.__name__})", param) from None
    if not container.streams.audio:
        container.close()
        raise AudioDecodeError("the file has no audio stream", param)
    return container


def _probe_with_ffmpeg(data: bytes, param: str) -> AudioInfo:
    container = _open_container(data, param)
    with container:
        try:
            stream = container.streams.audio[0]
            duration = None
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / 1_000_000
            return AudioInfo(int(stream.rate or 0), int(stream.channels or 0), duration, container.format.name)
        except InputError:
            raise
        except Exception as exc:
            raise AudioDecodeError(f"could not read the audio stream ({exc.__class__.__name__})", param) from None


def _decode_with_ffmpeg(data: bytes, param: str, max_seconds: float | None) -> tuple[np.ndarray, int]:
    import av

    container = _open_container(data, param)
    with container:
        try:
            stream = container.streams.audio[0]
            rate, channels = int(stream.rate or 0), int(stream.channels or 0)
            if rate <= 0 or channels <= 0:
                raise AudioDecodeError(f"{param} declares {channels} channels at {rate} Hz", param)
            limit = None if max_seconds is None else int(max_seconds * rate) + 1
            # packed float32 keeps channels interleaved: one reshape gives (frames, channels)
            resampler = av.AudioResampler(format="flt", layout=stream.layout.name if stream.layout else "mono", rate=rate)
            chunks: list[np.ndarray] = []
            decoded = 0
            frames = (frame for packet_frame in container.decode(stream) for frame in resampler.resample(packet_frame))
            for converted in itertools.chain(frames, resampler.resample(None)):
                chunk = converted.to_ndarray().reshape(-1, channels)
                chunks.append(chunk)
                decoded += len(chunk)
                if limit is not None and decoded >= limit:
                    raise AudioTooLongError(max_seconds, param)
        except InputError:
            raise
        except Exception as exc:
            raise AudioDecodeError(f"could not decode audio: {exc.__class__.__name__}", param) from None
        if not chunks:
            raise EmptyAudioError(param)
        return np.concatenate(chunks).astype(np.float32, copy=False), rate
