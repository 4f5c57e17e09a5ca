import base64
from itertools import combinations

import numpy as np

from tests.conftest import b64_audio
from tests.speechmodels.families.test_harmonyspeech_encoder import SPEAKERS


def embed(client, name: str) -> np.ndarray:
    response = client.post("/v1/embed/speaker", json={"model": "harmonyspeech-encoder", "input_audio": b64_audio(name)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "harmonyspeech-encoder" and body["id"]
    return np.frombuffer(base64.b64decode(body["data"]), dtype="<f4")


def test_same_speaker_pairs_score_above_different_speaker_pairs(client):
    vectors = {name: embed(client, name) for files in SPEAKERS.values() for name in files}
    assert all(v.shape == (256,) and abs(np.linalg.norm(v) - 1) < 1e-4 for v in vectors.values())
    same = [vectors[a] @ vectors[b] for files in SPEAKERS.values() for a, b in combinations(files, 2)]
    different = [vectors[a] @ vectors[b] for a in SPEAKERS["aew"] for b in SPEAKERS["axb"]]
    assert min(same) > max(different)


def test_vad_model_cannot_embed(client):
    response = client.post("/v1/embed/speaker", json={"model": "silero-vad", "input_audio": b64_audio("jfk.flac")})
    assert response.status_code == 400
    assert response.json()["reason"] == "unsupported_model" and response.json()["param"] == "model"
