"""Diarization through HTTP on the real fleet: VAD, the GE2E encoder's windows and the
clustering step, each a step of the job on its own queue."""

import base64
import json

import numpy as np

from speechmodels import audio
from tests.fleet import fixture_audio

CLIPS = ["cmu_arctic_us_aew_a0001.wav", "cmu_arctic_us_axb_a0004.wav", "cmu_arctic_us_aew_a0002.wav",
         "cmu_arctic_us_axb_a0006.wav"]


def conversation() -> bytes:
    gap = np.zeros(8000, np.float32)
    return audio.encode_wav(np.concatenate([piece for name in CLIPS
                                            for piece in (audio.decode(fixture_audio(name), 16_000), gap)]), 16_000)


def _changes(segments: list[dict]) -> list[str]:
    speakers = [segment["speaker"] for segment in segments]
    return [speaker for index, speaker in enumerate(speakers) if index == 0 or speaker != speakers[index - 1]]


def test_multipart_json_answer_runs_three_steps(client):
    response = client.post("/v1/audio/diarization", files={"file": ("talk.wav", conversation(), "audio/wav")},
                           data={"model": "diarization"}, headers={"Prefer": "respond-async"})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    result = client.get(f"/v1/jobs/{job_id}/result", params={})
    deadline_polls = 600
    while result.status_code == 409 and deadline_polls:
        import time

        time.sleep(0.1)
        deadline_polls -= 1
        result = client.get(f"/v1/jobs/{job_id}/result")
    body = result.json()
    assert result.status_code == 200, body
    assert _changes(body["segments"]) == ["A", "B", "A", "B"] and 15 < body["duration"] < 17
    steps = client.get(f"/v1/jobs/{job_id}").json()["steps"]
    assert [(step["name"], step["queue"]) for step in steps] == [
        ("silero-vad", "model.silero-vad"), ("harmonyspeech-encoder", "model.harmonyspeech-encoder"),
        ("speaker-diarizer", "model.speaker-diarizer")]


def test_rttm_and_known_speakers_by_json(client):
    references = [base64.b64encode(fixture_audio("cmu_arctic_us_axb_a0006.wav")).decode(),
                  "data:audio/wav;base64," + base64.b64encode(fixture_audio("cmu_arctic_us_aew_a0003.wav")).decode()]
    response = client.post("/v1/audio/diarization", json={
        "input_audio": base64.b64encode(conversation()).decode(), "response_format": "rttm",
        "known_speaker_names": ["Priya Axb", "Alan"], "known_speaker_references": references})
    assert response.status_code == 200, response.text
    lines = response.text.strip().splitlines()
    fields = [line.split() for line in lines]
    assert all(len(row) == 10 and row[0] == "SPEAKER" and row[2] == "1" and row[5:7] == ["<NA>", "<NA>"]
               for row in fields)
    speakers = [row[7] for row in fields]
    assert [s for i, s in enumerate(speakers) if i == 0 or s != speakers[i - 1]] == ["Alan", "Priya_Axb", "Alan",
                                                                                    "Priya_Axb"]
    assert float(fields[0][3]) < 0.5 and all(float(row[4]) > 0 for row in fields)


def test_a_fixed_speaker_count_is_honoured(client):
    response = client.post("/v1/audio/diarization", files={"file": ("talk.wav", conversation(), "audio/wav")},
                           data={"num_speakers": "1"})
    assert response.status_code == 200, response.text
    assert {segment["speaker"] for segment in response.json()["segments"]} == {"A"}


def test_bad_diarization_requests_are_4xx(client):
    talk = conversation()
    cases = [
        ({"num_speakers": "3", "max_speakers": "2"}, None, "max_speakers"),
        ({"known_speaker_names[]": ["a", "b"]}, None, "known_speaker_references"),  # names without clips
        ({"known_speaker_names[]": ["a"]}, [("known_speaker_references[]", ("r.wav", fixture_audio(
            "cmu_arctic_us_axb_a0005.wav"), "audio/wav"))], "known_speaker_references.0"),  # 1.6 s: too short
        ({"known_speaker_names[]": list("abcde")}, None, "known_speaker_names"),  # five: too many
    ]
    for data, extra_files, param in cases:
        files = [("file", ("talk.wav", talk, "audio/wav")), *(extra_files or [])]
        response = client.post("/v1/audio/diarization", files=files, data=data)
        body = response.json()
        assert response.status_code == 400 and body["reason"], (data, body)
        if param:
            assert body["param"].startswith(param), body
    noise = client.post("/v1/audio/diarization",
                        files={"file": ("noise.wav", fixture_audio("noise_exercise_bike.wav"), "audio/wav")})
    assert noise.status_code == 400 and noise.json()["reason"] == "no_speech", noise.text
    wrong = client.post("/v1/audio/diarization", json={"model": "piper", "input_audio": "AAAA"})
    assert wrong.status_code == 400
    assert client.post("/v1/audio/diarization", content=b"x", headers={"content-type": "text/plain"}).status_code == 415


def test_the_pipeline_is_listed_with_its_steps(client):
    cards = client.get("/v1/audio/diarization/models").json()["data"]
    card = next(card for card in cards if card["id"] == "diarization")
    assert card["object"] == "toolchain" and card["steps"] == ["silero-vad", "harmonyspeech-encoder",
                                                               "speaker-diarizer"]


def test_diarized_json_through_the_openai_sdk(fleet, client):
    """OpenAI's diarized transcription shape; each speaker's words are theirs."""
    import io

    import jiwer
    import openai

    sdk = openai.OpenAI(base_url=f"{fleet.base_url}/v1", api_key="unused", max_retries=0, timeout=180)
    reference = "data:audio/wav;base64," + base64.b64encode(fixture_audio("cmu_arctic_us_aew_a0003.wav")).decode()
    raw = sdk.audio.transcriptions.with_raw_response.create(
        model="whisper", file=("talk.wav", io.BytesIO(conversation()), "audio/wav"), response_format="diarized_json",
        chunking_strategy="auto", extra_body={"known_speaker_names": ["Alan"], "known_speaker_references": [reference]})
    body = json.loads(raw.content)
    assert body["task"] == "transcribe" and body["usage"] == {"type": "duration", "seconds": body["duration"]}
    assert all(segment["type"] == "transcript.text.segment" and segment["end"] > segment["start"]
               for segment in body["segments"])
    assert _changes(body["segments"]) == ["Alan", "A", "Alan", "A"]
    alan = " ".join(segment["text"] for segment in body["segments"] if segment["speaker"] == "Alan")
    expected = ("Author of the danger trail, Philip Steels, etc. "
                "Not at this particular case, Tom, apologized Whittemore.")
    normalise = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(),
                               jiwer.Strip()])
    assert jiwer.wer(normalise(expected), normalise(alan)) < 0.4, alan
    accepted = client.post("/v1/audio/transcriptions", headers={"Prefer": "respond-async"},
                           files={"file": ("talk.wav", conversation(), "audio/wav")},
                           data={"model": "whisper", "response_format": "diarized_json"})
    assert accepted.status_code == 202, accepted.text
    import time

    deadline = time.monotonic() + 120
    while (job := client.get(f"/v1/jobs/{accepted.json()['id']}").json())["status"] != "succeeded":
        assert job["status"] in ("queued", "running") and time.monotonic() < deadline, job
        time.sleep(0.2)
    assert [step["name"] for step in job["steps"]] == ["silero-vad", "harmonyspeech-encoder", "speaker-diarizer",
                                                       "whisper", "speaker-diarizer"]
