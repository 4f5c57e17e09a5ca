"""JSON bodies are read with orjson: what it reads differently from the standard library
(a byte order mark, UTF-16, NaN) is still either served or a 400 in the error envelope."""

import json

import pytest

from tests.api.test_errors import assert_envelope
from tests.conftest import b64_audio

JSON = {"content-type": "application/json"}


def test_a_body_with_a_byte_order_mark_is_read(client):
    body = json.dumps({"model": "silero-vad", "input_audio": b64_audio("jfk.flac"), "get_timestamps": True}).encode()
    response = client.post("/v1/audio/vad", content=b"\xef\xbb\xbf" + body, headers=JSON)
    assert response.status_code == 200, response.text
    assert response.json()["speech_activity"] and response.json()["timestamps"]


@pytest.mark.parametrize("body", [
    b'{"model": "silero-vad", "input_audio": "AAAA", "threshold": NaN}',  # the standard library took NaN
    json.dumps({"model": "silero-vad", "input_audio": "AAAA"}).encode("utf-16"),
])
def test_what_orjson_refuses_is_answered_as_malformed_json(client, body):
    malformed = client.post("/v1/audio/vad", content=b"{not json", headers=JSON)
    assert_envelope(malformed, 400)
    response = client.post("/v1/audio/vad", content=body, headers=JSON)
    assert_envelope(response, 400, malformed.json()["reason"])
