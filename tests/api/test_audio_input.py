"""``input_vad_data``: every form HSE clients send is read; anything else is a 400, never a 500
or a silently wrong reference."""

import asyncio
import base64
import json

import pytest

from api.audio_input import INLINE_BASE64_CHARS, read_audio, read_vad_segments
from api.errors import APIError
from speechmodels import InputError
from tests.fleet import fixture_audio

MAX_S = 600.0


@pytest.mark.parametrize("value", [
    json.dumps({"speech_activity": True, "timestamps": [{"start": 0.5, "end": 2.0}, {"start": 3.0, "end": 4.5}]}),
    base64.b64encode(json.dumps({"timestamps": [{"start": 0.5, "end": 2.0}, {"start": 3, "end": 4.5}]}).encode()).decode(),
    # HSE's faster-whisper form: segments, themselves base64 JSON
    json.dumps({"segments": base64.b64encode(json.dumps([{"start": 0.5, "end": 2.0, "text": "hi"},
                                                          {"start": 3.0, "end": 4.5}]).encode()).decode()}),
    json.dumps([[0.5, 2.0], [3, 4.5]]),
])
def test_every_accepted_form_gives_the_same_segments(value):
    assert json.loads(read_vad_segments(value, MAX_S)) == [[0.5, 2.0], [3.0, 4.5]]


@pytest.mark.parametrize("value", [
    "not json", "[1, 2]", '{"timestamps": 5}', '[["a", "b"]]', '[{"start": 1}]', "[[true, false]]", "[[2, 1]]",
    "[[-5, -1]]", "[[NaN, NaN]]", "[[0, Infinity]]", "[[0, 1e400]]", "[[0, " + "9" * 400 + "]]", "[[0, 601]]",
    "[" * 100_000 + "]" * 100_000,
])
def test_malformed_or_impossible_segments_are_a_400(value):
    with pytest.raises(APIError) as bad:
        read_vad_segments(value, MAX_S)
    assert bad.value.status == 400 and bad.value.param == "input_vad_data"


def test_no_segments_means_no_speech():
    with pytest.raises(APIError) as silent:
        read_vad_segments('{"timestamps": []}', MAX_S)
    assert silent.value.status == 400 and silent.value.reason == "no_speech"


def _read(encoded: str, max_seconds: float = 60.0) -> bytes:
    return asyncio.run(read_audio(encoded, max_seconds))


@pytest.mark.parametrize("name", ["cmu_arctic_us_aew_a0001.wav", "german_speech_8000.wav"])
def test_small_audio_read_on_the_loop_is_the_bytes_sent(name):
    data = fixture_audio(name)
    assert len(base64.b64encode(data)) <= INLINE_BASE64_CHARS  # the event-loop path
    assert _read(base64.b64encode(data).decode()) == data
    assert _read("data:audio/wav;base64," + base64.b64encode(data).decode()) == data


@pytest.mark.parametrize("encoded", ["not base64!", "QUJDRA=", "é" * 8, "QUJD\n"])
def test_invalid_base64_is_a_400_on_either_path(encoded):
    for value in (encoded, encoded + "A" * (INLINE_BASE64_CHARS + 4)):  # on the loop, in a thread
        with pytest.raises(APIError) as refused:
            _read(value)
        assert refused.value.status == 400 and refused.value.reason == "invalid_base64"


def test_audio_checks_hold_on_the_loop_path():
    """Too long is a 413; a RIFF header libsndfile cannot read goes to the thread (ffmpeg may
    try it there) and is refused as bad audio, not accepted."""
    clip = fixture_audio("cmu_arctic_us_aew_a0001.wav")
    with pytest.raises(APIError) as too_long:
        _read(base64.b64encode(clip).decode(), max_seconds=0.5)
    assert too_long.value.status == 413
    with pytest.raises(InputError):
        _read(base64.b64encode(b"RIFF" + b"\x00" * 60).decode())
