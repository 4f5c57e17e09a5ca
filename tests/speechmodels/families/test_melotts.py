"""MeloTTS: the published layout at full size, the English front end (phones, tones,
language ids, blanks), and loading and synthesis on a small random checkpoint in the
published layout."""

import numpy as np
import pytest
import torch

from speechmodels import InputError, ModelConfig, load_model
from speechmodels.families.melotts.network import MeloConfig, MeloNetwork
from speechmodels.families.melotts.text import english_phones, token_arrays
from speechmodels.weights import WeightsNotFound
from tests.checkpoints import MELO_CONFIG, MELO_SPEAKERS, MELO_SYMBOLS, build_melotts


def test_the_published_sizes_give_the_published_layout():
    """MeloTTS-English's config: hidden 192, six text layers, a 3-layer transformer per flow
    coupling, 219 symbols, 16 tones, 8 languages, 256 speaker slots, 44.1 kHz decoder."""
    config = MeloConfig.model_validate({
        **MELO_CONFIG["data"], "symbols": ["_"] * 219, "num_tones": 16, "num_languages": 8,
        "inter_channels": 192, "hidden_channels": 192, "filter_channels": 768, "n_heads": 2, "n_layers": 6,
        "n_layers_trans_flow": 3, "kernel_size": 3, "resblock_kernel_sizes": [3, 7, 11],
        "resblock_dilation_sizes": [[1, 3, 5]] * 3, "upsample_rates": [8, 8, 2, 2, 2],
        "upsample_initial_channel": 512, "upsample_kernel_sizes": [16, 16, 8, 2, 2], "gin_channels": 256})
    state = {key: tuple(t.shape) for key, t in MeloNetwork(config).state_dict().items()}
    assert state["enc_p.emb.weight"] == (219, 192) and state["enc_p.tone_emb.weight"] == (16, 192)
    assert state["enc_p.language_emb.weight"] == (8, 192)
    assert state["enc_p.bert_proj.weight"] == (192, 1024, 1) and state["enc_p.ja_bert_proj.weight"] == (192, 768, 1)
    assert state["enc_p.encoder.spk_emb_linear.weight"] == (192, 256)
    assert state["flow.flows.6.pre.weight"] == (192, 96, 1) and state["flow.flows.6.post.weight"] == (96, 192, 1)
    assert state["flow.flows.0.enc.ffn_layers.2.conv_1.weight"] == (768, 192, 5)
    assert state["flow.flows.0.enc.spk_emb_linear.weight"] == (192, 256)
    assert "flow.flows.0.enc.attn_layers.3.conv_q.weight" not in state  # three layers per coupling
    assert state["emb_g.weight"] == (256, 256) and state["dec.ups.4.weight"] == (32, 16, 2)
    assert state["sdp.flows.1.proj.weight"] == (29, 192, 1) and state["dp.conv_1.weight"] == (256, 192, 3)
    assert not any(key.startswith(("enc_q.", "ref_enc.")) for key in state)


def test_english_becomes_phones_with_stress_as_tone():
    phones = english_phones("Hello, world!")
    assert phones.phones == ["_", "hh", "ah", "l", "ow", ",", "w", "er", "l", "d", "!", "_"]
    assert phones.tones == [0, 0, 1, 0, 2, 0, 0, 2, 0, 0, 0, 0]  # stress 0 -> tone 1, stress 1 -> tone 2
    assert english_phones("vivid").phones[1] == "V"  # upstream's spelling of English v
    assert english_phones("zxq").phones[1:4] == ["z", "iy", "eh"]  # not in the dictionary: spelt


def test_tokens_carry_english_tone_offset_language_id_and_blanks():
    table = {symbol: index for index, symbol in enumerate(MELO_SYMBOLS)}
    arrays = token_arrays(english_phones("Hi."), table, "EN", add_blank=True)
    assert arrays["ids"].tolist() == [0, 0, 0, MELO_SYMBOLS.index("hh"), 0, MELO_SYMBOLS.index("ay"), 0,
                                      MELO_SYMBOLS.index("."), 0, 0, 0]
    assert arrays["tones"].tolist()[1::2] == [7, 7, 9, 7, 7]  # English's tones start at 7
    assert set(arrays["languages"].tolist()[1::2]) == {2} and arrays["languages"][0] == 0
    assert token_arrays(english_phones("a #"), table, "EN", add_blank=False)["ids"][-2] == \
        MELO_SYMBOLS.index("UNK")


@pytest.fixture(scope="module")
def melo(tmp_path_factory):
    folder = build_melotts(tmp_path_factory.mktemp("melotts-english"))
    return load_model(ModelConfig(name="melo", model=str(folder), model_type="MeloTTSSynthesizer"))


def test_speaks_in_each_speaker_at_44_khz(melo):
    assert melo.voices() == list(MELO_SPEAKERS) and melo.language_voices() == {"EN": list(MELO_SPEAKERS)}
    text = "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background."
    first = melo.infer({"text": text, "voice": "EN-BR", "seed": 11})
    assert first.sample_rate == 44_100 and first.samples.dtype == np.float32
    assert first.samples.size >= 512 * 2 * 40  # a frame of 512 samples or more per phone and blank
    assert np.array_equal(first.samples, melo.infer({"text": text, "voice": "EN-BR", "seed": 11}).samples)
    other = melo.infer({"text": text, "voice": "EN-AU", "seed": 11})
    assert not np.array_equal(first.samples[:4096], other.samples[:4096])  # the speaker conditions every step
    assert melo.infer({"text": text, "voice": "EN-BR", "seed": 11, "speed": 2.0}).samples.size < first.samples.size


def test_unknown_speakers_and_languages_are_refused(melo, tmp_path):
    with pytest.raises(InputError) as unknown:
        melo.prepare({"text": "Hi there.", "voice": "EN-NZ"})
    assert unknown.value.code == "unknown_voice"
    with pytest.raises(WeightsNotFound, match="front end"):
        load_model(ModelConfig(name="zh", model=str(tmp_path), model_type="MeloTTSSynthesizer", language="ZH"))


def test_the_checkpoint_loads_strictly_apart_from_the_posterior_encoder(tmp_path):
    folder = build_melotts(tmp_path)
    state = torch.load(folder / "checkpoint.pth")
    assert any(key.startswith("enc_q.") for key in state["model"])
    state["model"].pop("enc_p.tone_emb.weight")
    torch.save(state, folder / "checkpoint.pth")
    with pytest.raises(RuntimeError, match="tone_emb"):
        load_model(ModelConfig(name="broken", model=str(folder), model_type="MeloTTSSynthesizer"))
