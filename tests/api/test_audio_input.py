"""``input_vad_data``: every form HSE clients send is read; anything else is a 400, never a 500
or a silently wrong reference."""

import base64
import json

import pytest

from api.audio_input import read_vad_segments
from api.errors import APIError

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
