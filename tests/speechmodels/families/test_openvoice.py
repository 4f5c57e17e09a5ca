"""OpenVoice V2's tone colour converter: the published layout at full size, and the real
loading, embedding and conversion code on a small random checkpoint in that layout."""

import json
import re

import numpy as np
import pytest
import torch

from speechmodels import InputError, ModelConfig, load_model
from speechmodels.families.openvoice.network import (
    ConverterConfig,
    ToneConverter,
    spectrogram,
)
from tests.checkpoints import OV_GIN, build_openvoice_v2
from tests.fleet import fixture_audio

WEIGHT_NORMED = r"^dec\.(ups|resblocks)\.|\.enc\.(cond_layer|in_layers|res_skip_layers)|^ref_enc\.convs\."


def test_the_published_sizes_give_the_published_layout():
    """converter/checkpoint.pth: 486 tensors (151 weight-norm pairs), 32,792,226 parameters."""
    network = ToneConverter(ConverterConfig(zero_g=True))
    state = network.state_dict()
    normed = [key for key in state if key.endswith(".weight") and re.search(WEIGHT_NORMED, key)]
    assert len(normed) == 151 and len(state) + len(normed) == 486
    g_parameters = sum(state[key].shape[0] for key in normed)
    assert sum(p.numel() for p in network.parameters()) + g_parameters == 32_792_226
    shapes = {key: tuple(t.shape) for key, t in state.items()}
    assert shapes["enc_q.pre.weight"] == (192, 513, 1) and shapes["enc_q.enc.cond_layer.weight"] == (6144, 256, 1)
    assert shapes["flow.flows.6.enc.cond_layer.weight"] == (1536, 256, 1) and "flow.flows.7.pre.weight" not in shapes
    assert shapes["dec.ups.0.weight"] == (512, 256, 16) and shapes["dec.resblocks.11.convs1.2.weight"] == (32, 32, 11)
    assert shapes["ref_enc.gru.weight_ih_l0"] == (384, 1152) and shapes["ref_enc.layernorm.weight"] == (513,)
    assert "dec.conv_post.bias" not in shapes


def test_the_spectrogram_has_one_frame_per_hop():
    spec = spectrogram(torch.randn(1, 22_050), ConverterConfig())
    assert spec.shape == (1, 513, 86) and bool((spec > 0).all())


@pytest.fixture(scope="module")
def openvoice(tmp_path_factory):
    folder = build_openvoice_v2(tmp_path_factory.mktemp("openvoicev2"))
    encoder = load_model(ModelConfig(name="ov-encoder", model=str(folder), model_type="OpenVoiceV2ToneConverterEncoder"))
    converter = load_model(ModelConfig(name="ov-converter", model=str(folder), model_type="OpenVoiceV2ToneConverter"))
    return encoder, converter


def test_embeds_and_converts_at_22_khz(openvoice):
    encoder, converter = openvoice
    source, target = fixture_audio("cmu_arctic_us_axb_a0005.wav"), fixture_audio("cmu_arctic_us_aew_a0002.wav")
    se = encoder.infer({"audio": target})
    assert se.shape == (OV_GIN,) and se.dtype == np.float32
    converted = converter.infer({"source_audio": source, "embedding": se.tobytes(), "tau": 0.0})
    samples = converter.prepare({"source_audio": source, "embedding": se.tobytes()}).samples
    assert converted.sample_rate == 22_050 and converted.samples.size == samples.size // 256 * 256
    again = converter.infer({"source_audio": source, "embedding": se.tobytes(), "tau": 0.0})
    assert np.allclose(converted.samples, again.samples)  # tau 0: no sampling noise
    other = converter.infer({"source_audio": source, "embedding": (se + 1).tobytes(), "tau": 0.0})
    assert not np.allclose(converted.samples, other.samples)  # the target's embedding steers the flow


def test_a_wrong_embedding_fails_alone(openvoice):
    _, converter = openvoice
    with pytest.raises(InputError) as wrong:
        converter.prepare({"source_audio": fixture_audio("jfk.flac"), "embedding": b"\0" * 8})
    assert wrong.value.param == "target_embedding"


def test_v1_layout_loads_into_the_same_network_without_zero_g(tmp_path):
    folder = build_openvoice_v2(tmp_path, version=1)
    converter = load_model(ModelConfig(name="ov1", model=str(folder), model_type="OpenVoiceV1ToneConverter"))
    encoder = load_model(ModelConfig(name="ov1-enc", model=str(folder), model_type="OpenVoiceV1ToneConverterEncoder"))
    assert converter.network.config.zero_g is False
    se = encoder.infer({"audio": fixture_audio("cmu_arctic_us_aew_a0001.wav")})
    out = converter.infer({"source_audio": fixture_audio("cmu_arctic_us_axb_a0005.wav"), "embedding": se.tobytes()})
    assert out.sample_rate == 22_050 and out.samples.size > 0


def test_the_encoder_averages_over_the_speech_pieces_vad_found(openvoice):
    encoder, _ = openvoice
    clip = fixture_audio("jfk.flac")  # 11 s
    whole = encoder.infer({"audio": clip})
    segments = json.dumps([[0.3, 2.2], [3.3, 10.6]]).encode()
    pieces = encoder.prepare({"audio": clip, "vad_segments": segments})
    assert [round(p.size / 22_050, 1) for p in pieces] == [9.2]  # 1.9 s + 7.3 s, one piece under 10 s
    from_speech = encoder.infer({"audio": clip, "vad_segments": segments})
    assert from_speech.shape == whole.shape and not np.allclose(from_speech, whole)
    with pytest.raises(InputError) as silent:
        encoder.prepare({"audio": clip, "vad_segments": b"[[0.0, 0.2]]"})
    assert silent.value.code == "no_speech"
