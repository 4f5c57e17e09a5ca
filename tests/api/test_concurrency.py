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
    assert [status for status, _ in answers] == [200] * 64
    assert len({body["id"] for _, body in answers}) == 64
    # the fleet really batched: some job ran in a batch of more than one
    with httpx.Client(base_url=fleet.base_url) as http:
        sizes = [http.get(f"/v1/jobs/{body['id']}").json()["steps"][0]["batch_size"] for _, body in answers]
    assert max(sizes) > 1, sizes
