"""The voice cloning toolchains, each step on its own model's queue, on small random
checkpoints in the published layouts: harmonyspeech (speaker encoder -> synthesizer ->
vocoder), openvoice_v1 and openvoice_v2 (VAD -> tone colour encoder -> base speaker or MeloTTS
-> tone converter), and voice conversion on the OpenVoice tone converters."""

import base64
import io
import json

import numpy as np
import soundfile

from tests.checkpoints import HS_EMBEDDING
from tests.conftest import b64_audio

TEXT = "Cloning a voice takes three steps."


def _steps(client, job_id: str) -> list[tuple[str, str]]:
    return [(step["name"], step["queue"]) for step in client.get(f"/v1/jobs/{job_id}").json()["steps"]]


def test_a_reference_clip_runs_encoder_synthesizer_and_vocoder_in_order(client):
    response = client.post("/v1/audio/speech", json={"model": "harmonyspeech", "input": TEXT, "mode": "voice_cloning",
                                                     "input_audio": b64_audio("cmu_arctic_us_aew_a0001.wav")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert _steps(client, body["id"]) == [("hs-encoder", "model.hs-encoder"), ("hs-synthesizer", "model.hs-synthesizer"),
                                          ("hs-vocoder", "model.hs-vocoder")]
    steps = client.get(f"/v1/jobs/{body['id']}").json()["steps"]
    assert all(later["started_at"] >= earlier["finished_at"] for earlier, later in zip(steps, steps[1:]))
    samples, rate = soundfile.read(io.BytesIO(base64.b64decode(body["data"])), dtype="float32")
    assert rate == 16_000 and samples.size % 200 == 0 and samples.size > 0  # 200 samples per mel frame


def test_an_embedding_skips_the_encoder(client):
    embedded = client.post("/v1/embed/speaker", json={"model": "harmonyspeech",
                                                      "input_audio": b64_audio("cmu_arctic_us_axb_a0004.wav")})
    assert embedded.status_code == 200, embedded.text
    assert np.frombuffer(base64.b64decode(embedded.json()["data"]), "<f4").size == HS_EMBEDDING
    response = client.post("/v1/audio/speech", json={"model": "harmonyspeech", "input": TEXT,
                                                     "input_embedding": embedded.json()["data"],
                                                     "output_options": {"format": "flac", "sample_rate": 22_050}})
    assert response.status_code == 200, response.text
    assert [name for name, _ in _steps(client, response.json()["id"])] == ["hs-synthesizer", "hs-vocoder"]
    assert soundfile.info(io.BytesIO(base64.b64decode(response.json()["data"]))).samplerate == 22_050


def test_cloning_requests_that_cannot_run_are_400(client):
    missing = client.post("/v1/audio/speech", json={"model": "harmonyspeech", "input": TEXT})
    assert missing.status_code == 400 and missing.json()["param"] == "input_audio"
    wrong_size = client.post("/v1/audio/speech", json={"model": "harmonyspeech", "input": TEXT,
                                                       "input_embedding": base64.b64encode(b"\0" * 12).decode()})
    assert wrong_size.status_code == 400 and wrong_size.json()["param"] == "input_embedding"
    streamed = client.post("/v1/audio/speech", json={"model": "harmonyspeech", "input": TEXT, "stream_format": "sse",
                                                     "input_audio": b64_audio("cmu_arctic_us_axb_a0005.wav")})
    assert streamed.status_code == 400
    plain = client.post("/v1/audio/speech", json={"model": "piper", "input": TEXT,
                                                  "input_audio": b64_audio("cmu_arctic_us_axb_a0005.wav")})
    assert plain.status_code == 400 and plain.json()["param"] == "mode"
    not_tts = client.post("/v1/audio/speech", json={"model": "voicefixer", "input": TEXT})
    assert not_tts.status_code == 400 and not_tts.json()["param"] == "model"


def test_the_toolchain_is_listed_for_speech(client):
    cards = {card["id"]: card for card in client.get("/v1/audio/speech/models").json()["data"]}
    assert cards["harmonyspeech"]["object"] == "toolchain"
    assert cards["harmonyspeech"]["steps"] == ["hs-encoder", "hs-synthesizer", "hs-vocoder"]


def test_voice_conversion_encodes_the_target_then_converts_on_their_own_queues(client):
    response = client.post("/v1/voice/convert", json={
        "model": "openvoice_v2", "source_audio": b64_audio("cmu_arctic_us_axb_a0005.wav"),
        "target_audio": b64_audio("cmu_arctic_us_aew_a0003.wav"), "output_options": {"format": "flac"}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert _steps(client, body["id"]) == [("silero-vad", "model.silero-vad"), ("ov-encoder", "model.ov-encoder"),
                                          ("ov-converter", "model.ov-converter")]
    info = soundfile.info(io.BytesIO(base64.b64decode(body["data"])))
    assert info.format == "FLAC" and info.samplerate == 22_050 and info.duration > 1.0


def test_voice_conversion_with_an_embedding_runs_the_converter_alone(client):
    embedded = client.post("/v1/embed/speaker", json={"model": "openvoice_v2",
                                                      "input_audio": b64_audio("cmu_arctic_us_aew_a0003.wav")})
    assert embedded.status_code == 200, embedded.text
    for model in ("openvoice_v2", "ov-converter"):
        response = client.post("/v1/voice/convert", json={
            "model": model, "source_audio": b64_audio("cmu_arctic_us_axb_a0005.wav"),
            "target_embedding": embedded.json()["data"], "generation_options": {"tau": 0.0}})
        assert response.status_code == 200, response.text
        assert [name for name, _ in _steps(client, response.json()["id"])] == ["ov-converter"]


def test_a_tau_of_zero_is_zero_not_the_default(client):
    """tau scales the noise drawn for the source's latent: at 0 two runs agree exactly; left
    unset (0.3, the converter's default) they differ."""
    embedded = client.post("/v1/embed/speaker", json={"model": "openvoice_v2",
                                                      "input_audio": b64_audio("cmu_arctic_us_aew_a0003.wav")})
    assert embedded.status_code == 200, embedded.text

    def convert(**options) -> np.ndarray:
        response = client.post("/v1/voice/convert", json={
            "model": "ov-converter", "source_audio": b64_audio("cmu_arctic_us_axb_a0005.wav"),
            "target_embedding": embedded.json()["data"], **options})
        assert response.status_code == 200, response.text
        return _wav(response.json())[0]

    zero = [convert(generation_options={"tau": 0.0}) for _ in range(2)]
    assert np.array_equal(zero[0], zero[1])
    default = [convert() for _ in range(2)]
    assert not np.array_equal(default[0], default[1])


def test_voice_conversion_requests_that_cannot_run_are_4xx(client):
    source = b64_audio("cmu_arctic_us_axb_a0005.wav")
    no_target = client.post("/v1/voice/convert", json={"model": "openvoice_v2", "source_audio": source})
    assert no_target.status_code == 400 and no_target.json()["param"] == "target_embedding"
    bare = client.post("/v1/voice/convert", json={"model": "ov-converter", "source_audio": source,
                                                  "target_audio": source})
    assert bare.status_code == 400
    wrong = client.post("/v1/voice/convert", json={"model": "piper", "source_audio": source, "target_audio": source})
    assert wrong.status_code == 400 and wrong.json()["param"] == "model"
    unknown = client.post("/v1/voice/convert", json={"model": "nope", "source_audio": source, "target_audio": source})
    assert unknown.status_code == 404


OV1_STEPS = [("silero-vad", "model.silero-vad"), ("ov1-encoder", "model.ov1-encoder"),
             ("ov1-synthesizer", "model.ov1-synthesizer"), ("ov1-converter", "model.ov1-converter")]


def _wav(body: dict) -> tuple[np.ndarray, int]:
    return soundfile.read(io.BytesIO(base64.b64decode(body["data"])), dtype="float32")


def test_openvoice_v1_runs_vad_encoder_base_speaker_and_converter_in_order(client):
    response = client.post("/v1/audio/speech", json={
        "model": "openvoice_v1", "input": TEXT, "voice": "cheerful", "mode": "voice_cloning",
        "input_audio": b64_audio("cmu_arctic_us_aew_a0003.wav"), "generation_options": {"seed": 5}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert _steps(client, body["id"]) == OV1_STEPS
    steps = client.get(f"/v1/jobs/{body['id']}").json()["steps"]
    assert all(step["status"] == "succeeded" for step in steps)
    assert all(later["started_at"] >= earlier["finished_at"] for earlier, later in zip(steps, steps[1:]))
    samples, rate = _wav(body)
    assert rate == 22_050 and samples.size > 256 * len(TEXT)  # a frame or more per symbol and blank


def test_openvoice_v1_skips_the_steps_that_brought_data_stands_in_for(client):
    reference = b64_audio("cmu_arctic_us_aew_a0003.wav")
    vad = client.post("/v1/audio/vad", json={"model": "silero-vad", "input_audio": reference,
                                             "return_seconds": True, "get_timestamps": True})
    assert vad.status_code == 200, vad.text
    with_segments = client.post("/v1/audio/speech", json={
        "model": "openvoice_v1", "input": TEXT, "input_audio": reference, "input_vad_data": json.dumps(vad.json())})
    assert with_segments.status_code == 200, with_segments.text
    assert _steps(client, with_segments.json()["id"]) == OV1_STEPS[1:]
    embedded = client.post("/v1/embed/speaker", json={"model": "openvoice_v1", "input_audio": reference})
    assert embedded.status_code == 200, embedded.text
    with_embedding = client.post("/v1/audio/speech", json={
        "model": "openvoice_v1", "input": TEXT, "voice": "sad", "input_embedding": embedded.json()["data"]})
    assert with_embedding.status_code == 200, with_embedding.text
    assert _steps(client, with_embedding.json()["id"]) == OV1_STEPS[2:]
    assert _wav(with_embedding.json())[1] == 22_050


def test_openvoice_v1_requests_that_cannot_run_are_400(client):
    reference = b64_audio("cmu_arctic_us_aew_a0003.wav")
    bad_vad = client.post("/v1/audio/speech", json={"model": "openvoice_v1", "input": TEXT, "input_audio": reference,
                                                    "input_vad_data": "not json"})
    assert bad_vad.status_code == 400 and bad_vad.json()["param"] == "input_vad_data"
    # a style the base speaker does not have is refused before any step runs
    unknown = client.post("/v1/audio/speech", json={"model": "openvoice_v1", "input": TEXT, "voice": "sarcastic",
                                                    "input_audio": reference})
    assert unknown.status_code == 400 and unknown.json()["param"] == "voice"
    assert unknown.json().get("job_id") is None and "whispering" in unknown.json()["message"]
    silent = client.post("/v1/audio/speech", json={"model": "openvoice_v1", "input": TEXT, "input_audio": reference,
                                                   "input_vad_data": json.dumps({"timestamps": []})})
    assert silent.status_code == 400 and silent.json()["reason"] == "no_speech"


def test_openvoice_v1_converts_voices_and_is_listed_with_both_routes(client):
    response = client.post("/v1/voice/convert", json={
        "model": "openvoice_v1", "source_audio": b64_audio("cmu_arctic_us_axb_a0005.wav"),
        "target_audio": b64_audio("cmu_arctic_us_aew_a0003.wav")})
    assert response.status_code == 200, response.text
    assert _steps(client, response.json()["id"]) == [OV1_STEPS[0], OV1_STEPS[1], OV1_STEPS[3]]
    card = {c["id"]: c for c in client.get("/v1/models").json()["data"]}["openvoice_v1"]
    assert card["object"] == "toolchain" and set(card["capabilities"]) == {"tts", "voice_convert"}
    assert card["routes"]["tts"] == [name for name, _ in OV1_STEPS]
    speech_card = {c["id"]: c for c in client.get("/v1/audio/speech/models").json()["data"]}["openvoice_v1"]
    assert speech_card["steps"] == [name for name, _ in OV1_STEPS]


def test_openvoice_v2_speaks_with_melotts_then_converts_to_the_reference(client):
    response = client.post("/v1/audio/speech", json={
        "model": "openvoice_v2", "input": TEXT, "voice": "EN-BR", "mode": "voice_cloning",
        "input_audio": b64_audio("cmu_arctic_us_aew_a0003.wav")})
    assert response.status_code == 200, response.text
    assert _steps(client, response.json()["id"]) == [
        ("silero-vad", "model.silero-vad"), ("ov-encoder", "model.ov-encoder"), ("ov-melo", "model.ov-melo"),
        ("ov-converter", "model.ov-converter")]
    assert _wav(response.json())[1] == 22_050  # the converter's rate; MeloTTS itself speaks at 44.1 kHz
    plain = client.post("/v1/audio/speech", json={"model": "ov-melo", "input": TEXT, "voice": "EN-AU",
                                                  "response_format": "wav"})
    assert plain.status_code == 200, plain.text
    assert soundfile.info(io.BytesIO(plain.content)).samplerate == 44_100
