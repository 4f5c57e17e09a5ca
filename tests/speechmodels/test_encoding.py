import io

import numpy as np
import pytest
import soundfile

from speechmodels import audio
from speechmodels.encoding import AUDIO_FORMATS, encode_audio, streaming_wav_header

RATE = 22_050


def _tone(seconds: float = 1.0) -> np.ndarray:
    return (0.4 * np.sin(2 * np.pi * 330 * np.arange(int(seconds * RATE)) / RATE)).astype(np.float32)


@pytest.mark.parametrize("format_name", ["wav", "flac", "mp3", "opus", "aac"])
def test_every_file_format_decodes_back_to_the_same_length(format_name):
    data = encode_audio(_tone(), RATE, format_name)
    info = audio.probe(data)
    assert info.duration_s == pytest.approx(1.0, abs=0.08), format_name
    decoded = audio.decode(data, 16_000)
    assert np.abs(decoded).max() > 0.2  # the tone survived, not silence


def test_pcm_is_raw_little_endian_int16_clipped_not_wrapped():
    samples = np.array([0.0, 0.5, -0.5, 1.5, -1.5], dtype=np.float32)
    pcm = np.frombuffer(encode_audio(samples, RATE, "pcm"), dtype="<i2")
    assert pcm.tolist() == [0, 16383, -16383, 32767, -32767]


def test_streaming_wav_header_plus_pcm_is_readable():
    data = streaming_wav_header(RATE) + encode_audio(_tone(0.5), RATE, "pcm")
    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    assert rate == RATE and samples.size == int(0.5 * RATE)


def test_content_types():
    assert {name: fmt.content_type for name, fmt in AUDIO_FORMATS.items()} == {
        "wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac",
        "pcm": "audio/pcm"}
