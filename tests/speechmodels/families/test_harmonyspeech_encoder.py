import json
from itertools import combinations

import numpy as np
import pytest
import torch

from speechmodels import InputError, ModelConfig, load_model
from speechmodels.families.harmonyspeech_encoder import EncoderConfig, SpeakerEncoderNet
from speechmodels.weights import resolve_weights
from tests.fleet import fixture_audio

SPEAKERS = {
    "aew": ["cmu_arctic_us_aew_a0001.wav", "cmu_arctic_us_aew_a0002.wav", "cmu_arctic_us_aew_a0003.wav"],
    "axb": ["cmu_arctic_us_axb_a0004.wav", "cmu_arctic_us_axb_a0005.wav", "cmu_arctic_us_axb_a0006.wav"],
}


@pytest.fixture(scope="module")
def encoder():
    return load_model(ModelConfig(name="enc", model="package:resemblyzer", model_type="HarmonySpeechEncoder"))


def embed_all(model) -> dict[str, np.ndarray]:
    names = [name for files in SPEAKERS.values() for name in files]
    outputs = model.infer_batch([model.prepare({"audio": fixture_audio(name)}) for name in names])
    return dict(zip(names, outputs))


def test_same_speaker_pairs_score_above_different_speaker_pairs(encoder):
    embeddings = embed_all(encoder)
    for vector in embeddings.values():
        assert vector.shape == (256,) and vector.dtype == np.float32
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    same = [embeddings[a] @ embeddings[b] for files in SPEAKERS.values() for a, b in combinations(files, 2)]
    different = [embeddings[a] @ embeddings[b] for a in SPEAKERS["aew"] for b in SPEAKERS["axb"]]
    assert min(same) > max(different), (same, different)


def test_matches_resemblyzer_reference(encoder):
    """Same weights, same features: our GE2E port gives resemblyzer's embeddings."""
    from resemblyzer import VoiceEncoder, preprocess_wav

    from speechmodels import audio

    reference = VoiceEncoder(device="cpu", verbose=False)
    for name in SPEAKERS["aew"][:2]:
        samples = audio.decode(fixture_audio(name), 16_000)
        expected = reference.embed_utterance(preprocess_wav(samples))
        np.testing.assert_allclose(encoder.infer({"audio": fixture_audio(name)}), expected, atol=1e-5)


def test_batched_call_equals_one_by_one(encoder):
    items = [encoder.prepare({"audio": fixture_audio(name)}) for name in SPEAKERS["axb"] + ["jfk.flac"]]
    batched = encoder.infer_batch(items)
    for item, vector in zip(items, batched):
        np.testing.assert_allclose(encoder.infer_batch([item])[0], vector, atol=1e-5)


def _write_hse_layout(root, state_dict, hparams: dict):
    (root / "encoder").mkdir(parents=True)
    (root / "encoder" / "config.json").write_text(json.dumps(hparams))
    torch.save({"step": 0, "model_state": state_dict}, root / "encoder" / "encoder.pt")


def test_hse_layout_with_the_real_weights_gives_the_same_embeddings(encoder, tmp_path):
    checkpoint = torch.load(resolve_weights("package:resemblyzer") / "pretrained.pt", map_location="cpu", weights_only=True)
    # resemblyzer's preprocessing has no peak rescale: switch HSE's off to compare like with like
    _write_hse_layout(tmp_path, checkpoint["model_state"], {**EncoderConfig().model_dump(), "rescale_peak": None})
    hse = load_model(ModelConfig(name="enc-hse", model=str(tmp_path), model_type="HarmonySpeechEncoder"))
    clip = {"audio": fixture_audio("cmu_arctic_us_axb_a0004.wav")}
    np.testing.assert_allclose(hse.infer(clip), encoder.infer(clip), atol=1e-6)


def test_hse_layout_config_drives_the_architecture(tmp_path):
    """A randomly initialised checkpoint in the published format, with its sizes reduced."""
    hparams = EncoderConfig(model_hidden_size=64, model_embedding_size=32, model_num_layers=2)
    torch.manual_seed(0)
    # sectioned, as HSE's config.json nests the network sizes under "model"
    sections = {"model": {"mel_n_channels": 40, "model_hidden_size": 64, "model_embedding_size": 32,
                          "model_num_layers": 2}, "data": {"sampling_rate": 16000}}
    _write_hse_layout(tmp_path, SpeakerEncoderNet(hparams).state_dict(), sections)
    small = load_model(ModelConfig(name="enc-small", model=str(tmp_path), model_type="HarmonySpeechEncoder"))
    assert small.hparams.model_embedding_size == 32 and small.hparams.rescale_peak == 0.9
    vector = small.infer({"audio": fixture_audio("cmu_arctic_us_aew_a0002.wav")})
    assert vector.shape == (32,) and np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_state_dict_keys_are_the_published_ones():
    keys = set(SpeakerEncoderNet(EncoderConfig()).state_dict())
    published = set(torch.load(resolve_weights("package:resemblyzer") / "pretrained.pt", map_location="cpu",
                               weights_only=True)["model_state"])
    assert keys == published


def test_too_short_audio_is_an_input_error(encoder):
    import io

    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(100, dtype=np.float32), 16_000, format="WAV")
    with pytest.raises(InputError):
        encoder.prepare({"audio": buffer.getvalue()})
