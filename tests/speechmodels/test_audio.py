import io
import os

import av
import numpy as np
import pytest
import soundfile

from speechmodels import audio
from tests.fleet import fixture_audio


def test_decodes_stereo_44k_flac_to_16k_mono():
    samples = audio.decode(fixture_audio("jfk.flac"), 16_000)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert len(samples) == pytest.approx(11.0 * 16_000, abs=16)


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not hasattr(os, "memfd_create") or not os.path.isdir("/proc/self/fd"),
                    reason="decoding reads from a Python file object here")
def test_decoding_reads_an_in_memory_file_and_keeps_no_descriptor(monkeypatch):
    flac, wav = fixture_audio("jfk.flac"), fixture_audio("german_speech_8000.wav")
    made = []
    real_memfd_create = os.memfd_create

    def counted_memfd_create(*args):
        made.append(real_memfd_create(*args))
        return made[-1]

    def refused_memfd_create(*args):
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(os, "memfd_create", counted_memfd_create)
    before = _open_descriptors()
    from_descriptor = [audio.decode(data, 16_000) for data in (flac, wav)]
    with pytest.raises(audio.AudioDecodeError):
        audio.decode(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(40), 16_000)  # refused by libsndfile
    with pytest.raises(audio.AudioTooLongError):
        audio.decode(flac, 16_000, max_seconds=2)  # stopped while decoding
    assert len(made) >= 4 and _open_descriptors() == before
    # where the system refuses in-memory files (seccomp, no descriptors left), a Python file
    # object reads the same samples
    monkeypatch.setattr(os, "memfd_create", refused_memfd_create)
    for data, samples in zip((flac, wav), from_descriptor):
        np.testing.assert_array_equal(audio.decode(data, 16_000), samples)
    monkeypatch.delattr(os, "memfd_create")  # a system without them
    np.testing.assert_array_equal(audio.decode(wav, 16_000), from_descriptor[1])


def test_upsamples_8k_wav():
    info = audio.probe(fixture_audio("german_speech_8000.wav"))
    assert info.sample_rate == 8000 and info.channels == 1
    samples = audio.decode(fixture_audio("german_speech_8000.wav"), 16_000)
    assert len(samples) == pytest.approx(info.duration_s * 16_000, abs=16)


def _aac_in_m4a(seconds: float = 1.0, rate: int = 16_000) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="ipod") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(tone.reshape(1, -1), format="fltp", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return buffer.getvalue()


def test_formats_libsndfile_cannot_read_go_through_ffmpeg():
    data = _aac_in_m4a()
    assert audio.probe(data).duration_s == pytest.approx(1.0, abs=0.1)
    samples = audio.decode(data, 16_000)
    assert len(samples) == pytest.approx(16_000, abs=2048)  # AAC priming adds a frame
    assert 0.1 < np.abs(samples).max() < 0.5


@pytest.mark.parametrize("data", [b"not audio at all" * 20, b"RIFF\x00\x00\x00\x00WAVEfmt ", bytes(range(256)) * 8])
def test_garbage_is_an_input_error(data):
    with pytest.raises(audio.AudioDecodeError):
        audio.probe(data)
    with pytest.raises(audio.AudioDecodeError):
        audio.decode(data, 16_000)


def test_empty_audio_is_an_input_error():
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(0, dtype=np.float32), 16_000, format="WAV")
    for data in (b"", buffer.getvalue()):
        with pytest.raises(audio.EmptyAudioError):
            audio.probe(data)
        with pytest.raises(audio.EmptyAudioError):
            audio.decode(data, 16_000)


def test_encode_wav_clips_instead_of_wrapping():
    loud = np.array([0.0, 1.5, -1.5, 0.5], dtype=np.float32)
    decoded, rate = soundfile.read(io.BytesIO(audio.encode_wav(loud, 16_000)), dtype="float32")
    assert rate == 16_000
    assert decoded[1] > 0.99 and decoded[2] < -0.99  # a wrapped int16 would flip sign


def _patched_wav(offset: int, fmt: str, value: int) -> bytes:
    """A valid 16 kHz WAV with one header field overwritten (offsets of the canonical fmt chunk)."""
    import struct

    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(1600, dtype=np.float32), 16_000, format="WAV", subtype="PCM_16")
    data = bytearray(buffer.getvalue())
    struct.pack_into(fmt, data, offset, value)
    return bytes(data)


@pytest.mark.parametrize("offset, fmt, value", [
    (20, "<H", 0),  # format tag 0
    (20, "<H", 0xFFFE),  # extensible without its extension
    (20, "<H", 0x11),  # IMA ADPCM tag on PCM data
    (22, "<H", 0),  # zero channels
    (24, "<I", 2**31 - 1),  # absurd sample rate
    (34, "<H", 0),  # zero bits per sample
])
def test_malformed_wav_headers_are_input_errors_not_crashes(offset, fmt, value):
    data = _patched_wav(offset, fmt, value)
    refused = 0
    for read in (audio.probe, lambda d: audio.decode(d, 16_000)):
        try:
            read(data)
        except audio.InputError:  # anything else (AttributeError, ValueError, ...) fails the test
            refused += 1
    assert refused >= 1


def test_decoded_length_is_bounded_even_when_the_header_lies():
    # raw AAC (ADTS) has no length in its header: the probe can only estimate
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="adts") as container:
        stream = container.add_stream("aac", rate=16_000)
        stream.layout = "mono"
        silence = np.zeros((1, 16_000 * 20), dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(silence, format="fltp", layout="mono")
        frame.sample_rate = 16_000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    with pytest.raises(audio.AudioTooLongError) as error:
        audio.decode(buffer.getvalue(), 16_000, max_seconds=5)
    assert error.value.status == 413
    wav = _patched_wav(0, "<4s", b"RIFF")
    assert len(audio.decode(wav, 16_000, max_seconds=5)) == 1600
    with pytest.raises(audio.AudioTooLongError):
        audio.decode(wav, 16_000, max_seconds=0.05)
