from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.conftest import b64_audio

ASYNC = {"Prefer": "respond-async"}


def test_64_concurrent_requests_are_all_answered_and_batched(fleet):
    clips = ["jfk.flac", "cmu_arctic_us_aew_a0001.wav", "cmu_arctic_us_axb_a0004.wav", "german_speech_8000.wav"]
    encoded = {name: b64_audio(name) for name in clips}

    def one(index: int) -> tuple[int, dict]:
        name = clips[index % len(clips)]
        path, model = (("/v1/audio/vad", "silero-vad") if index % 2 == 0
                       else ("/v1/embed/speaker", "harmonyspeech-encoder"))
        with httpx.Client(base_url=fleet.base_url, timeout=120) as http:
            response = http.post(path, json={"model": model, "input_audio": encoded[name]})
            return response.status_code, response.json()

    with ThreadPoolExecutor(64) as pool:
        answers = list(pool.map(one, range(64)))
    assert [status for status, _ in answers] == [200] * 64, [body for status, body in answers if status != 200]
    assert len({body["id"] for _, body in answers}) == 64
    # the fleet really batched: some job ran in a batch of more than one
    with httpx.Client(base_url=fleet.base_url) as http:
        sizes = [http.get(f"/v1/jobs/{body['id']}").json()["steps"][0]["batch_size"] for _, body in answers]
    assert max(sizes) > 1, sizes


def test_concurrent_jobs_sent_together_each_get_their_own_answer(fleet):
    """32 VAD requests of four different clips at once: they share messages (api.job_sender, on by
    default) and batches, and each gets exactly the answer its clip gets alone."""
    clips = ["jfk.flac", "cmu_arctic_us_aew_a0001.wav", "cmu_arctic_us_axb_a0004.wav", "german_speech_8000.wav"]
    encoded = {name: b64_audio(name) for name in clips}

    def detect(name: str) -> dict:
        with httpx.Client(base_url=fleet.base_url, timeout=120) as http:
            response = http.post("/v1/audio/vad", json={"model": "silero-vad", "input_audio": encoded[name],
                                                        "get_timestamps": True})
            assert response.status_code == 200, response.text
            return response.json()

    alone = {name: detect(name)["timestamps"] for name in clips}
    assert len({str(timestamps) for timestamps in alone.values()}) == len(clips)
    with ThreadPoolExecutor(32) as pool:
        names = [clips[index % len(clips)] for index in range(32)]
        answers = list(pool.map(detect, names))
    assert [answer["timestamps"] for answer in answers] == [alone[name] for name in names]
    with httpx.Client(base_url=fleet.base_url) as http:
        shared = [http.get(f"/v1/jobs/{answer['id']}").json()["steps"][0]["message_jobs"] for answer in answers]
    assert max(count or 1 for count in shared) > 1, shared  # some did share a message
