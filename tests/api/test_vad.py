from tests.conftest import b64_audio


def test_speech_found_in_jfk(client):
    response = client.post("/v1/audio/vad", json={"model": "silero-vad", "input_audio": b64_audio("jfk.flac"),
                                                  "get_timestamps": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "silero-vad" and body["id"] and isinstance(body["created"], int)
    assert body["speech_activity"] is True
    segments = body["timestamps"]
    assert len(segments) >= 3
    assert all(isinstance(s["start"], int) and 0 <= s["start"] < s["end"] <= 11 * 16_000 for s in segments)


def test_no_speech_in_noise(client):
    response = client.post("/v1/audio/vad", json={"model": "silero-vad", "get_timestamps": True,
                                                  "input_audio": b64_audio("noise_exercise_bike.wav")})
    assert response.status_code == 200, response.text
    assert response.json()["speech_activity"] is False
    assert response.json()["timestamps"] == []


def test_hse_parameters_are_applied(client):
    base = {"model": "silero-vad", "input_audio": b64_audio("jfk.flac"), "get_timestamps": True}
    seconds = client.post("/v1/audio/vad", json={**base, "return_seconds": True}).json()["timestamps"]
    assert all(isinstance(s["start"], float) and s["end"] <= 11.0 for s in seconds)
    merged = client.post("/v1/audio/vad", json={**base, "min_silence_duration_ms": 2000}).json()["timestamps"]
    default = client.post("/v1/audio/vad", json=base).json()["timestamps"]
    assert len(merged) < len(default)
    padded = client.post("/v1/audio/vad", json={**base, "speech_pad_ms": 200}).json()["timestamps"]
    assert padded[0]["start"] < default[0]["start"]
    bare = client.post("/v1/audio/vad", json={"model": "silero-vad", "input_audio": b64_audio("jfk.flac")}).json()
    assert bare["speech_activity"] is True and bare["timestamps"] is None


def test_8khz_input_is_resampled(client):
    response = client.post("/v1/audio/vad", json={"model": "silero-vad", "get_timestamps": True,
                                                  "input_audio": b64_audio("german_speech_8000.wav")})
    assert response.status_code == 200 and response.json()["speech_activity"] is True
    assert response.json()["timestamps"][-1]["end"] <= 1.9 * 16_000 + 1
