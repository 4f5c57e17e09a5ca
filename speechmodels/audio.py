"""Audio in: any common container/codec, rate and channel count -> float32 mono at a target rate.

libsndfile (WAV, FLAC, OGG/Vorbis, Opus, MP3) is tried first because it reads headers
without decoding; FFmpeg through PyAV covers the rest (M4A/AAC, WebM, ...).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
from collections.abc import Iterator
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
    result = probe_header(data, param)
    return result if result is not None else _checked_info(_probe_with_ffmpeg(data, param), param)


def probe_header(data: bytes, param: str = "input_audio") -> AudioInfo | None:
    """``probe`` as far as libsndfile reads the header itself: None for a format it does not
    read (``probe`` then asks FFmpeg, which may have to decode to find the duration)."""
    if not data:
        raise EmptyAudioError(param)
    try:
        info = soundfile.info(io.BytesIO(data))
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        return None
    duration = info.frames / info.samplerate if info.samplerate else None
    return _checked_info(AudioInfo(info.samplerate, info.channels, duration, info.format), param)


def _checked_info(result: AudioInfo, param: str) -> AudioInfo:
    check_layout(result.sample_rate, result.channels, param)
    if result.duration_s == 0:
        raise EmptyAudioError(param)
    return result


def decode(data: bytes, sample_rate: int, param: str = "input_audio", max_seconds: float | None = None) -> np.ndarray:
    """Decode to float32 mono at ``sample_rate``; raises :class:`InputError` subclasses.

    Decoding runs in blocks: each block is mixed down to mono and resampled as it comes, so
    what a request holds is its audio at the model's own rate, whatever rate and channel count
    the file has (600 s of 192 kHz stereo costs what 600 s of 16 kHz mono does). The rate and
    channel count are checked before anything is decoded, and ``max_seconds`` on the decoded
    audio, stopping early, so a file that lies in its header cannot make a worker decode hours.
    """
    if not data:
        raise EmptyAudioError(param)
    try:
        return _decode_with_libsndfile(data, sample_rate, param, max_seconds)
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        return _decode_with_ffmpeg(data, sample_rate, param, max_seconds)


class _MonoResampler:
    """Blocks of (frames, channels) at the source rate in, float32 mono at the target rate out."""

    def __init__(self, source_rate: int, target_rate: int, channels: int, param: str, max_seconds: float | None):
        check_layout(source_rate, channels, param)
        self._stream = None if source_rate == target_rate else soxr.ResampleStream(
            source_rate, target_rate, 1, dtype="float32", quality="HQ")
        self._limit = None if max_seconds is None else int(max_seconds * source_rate) + 1
        self._max_seconds = max_seconds
        self._param = param
        self._frames = 0
        self._pieces: list[np.ndarray] = []

    def add(self, block: np.ndarray) -> None:
        self._frames += len(block)
        if self._limit is not None and self._frames >= self._limit:
            raise AudioTooLongError(self._max_seconds, self._param)
        mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0].astype(np.float32)
        if not np.all(np.isfinite(mono)):
            raise AudioDecodeError("audio contains NaN or infinite samples", self._param)
        self._pieces.append(mono if self._stream is None else self._stream.resample_chunk(mono))

    def finish(self) -> np.ndarray:
        if self._stream is not None and self._frames:
            self._pieces.append(self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
        samples = np.concatenate(self._pieces).astype(np.float32, copy=False) if self._pieces else np.zeros(0, np.float32)
        if samples.size == 0:
            raise EmptyAudioError(self._param)
        return samples


#: what a file may declare before any of it is decoded (far above any real recording)
MAX_SOURCE_RATE = 384_000
MAX_CHANNELS = 32
DECODE_BLOCK_FRAMES = 65_536


def check_layout(rate: int, channels: int, param: str = "input_audio") -> None:
    if rate <= 0 or channels <= 0:
        raise AudioDecodeError(f"{param} declares {channels} channels at {rate} Hz", param)
    if rate > MAX_SOURCE_RATE or channels > MAX_CHANNELS:
        raise AudioDecodeError(f"{param} declares {channels} channels at {rate} Hz; at most {MAX_CHANNELS} channels "
                               f"at {MAX_SOURCE_RATE} Hz are decoded", param)


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


@contextlib.contextmanager
def _sound_file(data: bytes) -> Iterator[soundfile.SoundFile]:
    """libsndfile reading ``data``, from an in-memory file descriptor where the OS gives one (Linux).

    From a Python file object libsndfile calls back into Python for each read it makes, dozens
    per 10 s clip, and every callback retakes the GIL. In a worker, whose batching threads take
    the GIL between model steps, each retake waits and switches context: a VAD worker switched
    about 84 times per request in its pool threads. From a descriptor, libsndfile reads with
    plain read() calls inside one C call that runs without the GIL.
    """
    descriptor = _memory_file(data)
    try:
        with soundfile.SoundFile(io.BytesIO(data) if descriptor is None else descriptor, closefd=False) as file:
            yield file
    finally:
        if descriptor is not None:
            os.close(descriptor)


def _memory_file(data: bytes) -> int | None:
    """A descriptor of an in-memory file holding ``data``, read from its start; None where there
    is none to be had (no ``memfd_create``, a sandbox that refuses it, no descriptors or memory
    left): then a Python file object does, slower but the same."""
    if not hasattr(os, "memfd_create"):
        return None
    try:
        descriptor = os.memfd_create("speechfleet-audio", os.MFD_CLOEXEC)
    except OSError:
        return None
    try:
        view = memoryview(data).cast("B")
        while view:
            view = view[os.write(descriptor, view):]
        os.lseek(descriptor, 0, os.SEEK_SET)
    except OSError:
        os.close(descriptor)
        return None
    return descriptor


def _decode_with_libsndfile(data: bytes, sample_rate: int, param: str, max_seconds: float | None) -> np.ndarray:
    with _sound_file(data) as file:
        output = _MonoResampler(file.samplerate, sample_rate, file.channels, param, max_seconds)
        for block in file.blocks(blocksize=DECODE_BLOCK_FRAMES, dtype="float32", always_2d=True):
            output.add(block)
        return output.finish()


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


def _decode_with_ffmpeg(data: bytes, sample_rate: int, param: str, max_seconds: float | None) -> np.ndarray:
    import av

    container = _open_container(data, param)
    with container:
        try:
            stream = container.streams.audio[0]
            rate, channels = int(stream.rate or 0), int(stream.channels or 0)
            output = _MonoResampler(rate, sample_rate, channels, param, max_seconds)
            # packed float32 keeps channels interleaved: one reshape gives (frames, channels)
            resampler = av.AudioResampler(format="flt", layout=stream.layout.name if stream.layout else "mono", rate=rate)
            frames = (frame for packet_frame in container.decode(stream) for frame in resampler.resample(packet_frame))
            for converted in itertools.chain(frames, resampler.resample(None)):
                output.add(converted.to_ndarray().reshape(-1, channels))
        except InputError:
            raise
        except Exception as exc:
            raise AudioDecodeError(f"could not decode audio: {exc.__class__.__name__}", param) from None
        return output.finish()
