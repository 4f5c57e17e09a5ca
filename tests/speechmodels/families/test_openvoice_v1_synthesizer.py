"""OpenVoice V1's base speaker: the published layout at full size, the VITS pieces it adds
(relative attention, the spline flow), the English front end, and loading and synthesis on a
small random checkpoint in the published layout."""

import numpy as np
import pytest
import torch

from speechmodels import InputError, ModelConfig, load_model
from speechmodels.families.openvoice.base_speaker import BaseSpeaker, BaseSpeakerConfig
from speechmodels.families.openvoice.durations import (
    SPLINE_BOUND,
    rational_quadratic_spline,
)
from speechmodels.families.openvoice.text import english_ipa, symbol_ids
from speechmodels.families.openvoice.text_encoder import RelativeSelfAttention
from speechmodels.weights import WeightsNotFound
from tests.checkpoints import OV1_STYLES, OV1_SYMBOLS, build_openvoice_v1


def test_the_published_sizes_give_the_published_layout():
    """OpenVoice's SynthesizerTrn with n_speakers 10 at its config's sizes (hidden 192, six
    layers, two heads, filter 768), less the training-only posterior encoder."""
    config = BaseSpeakerConfig(symbols=OV1_SYMBOLS, speakers=OV1_STYLES)
    state = {key: tuple(t.shape) for key, t in BaseSpeaker(config).state_dict().items()}
    assert state["enc_p.emb.weight"] == (len(OV1_SYMBOLS), 192)
    assert state["enc_p.encoder.attn_layers.5.emb_rel_k"] == (1, 9, 96)  # ±4 positions, one table for both heads
    assert state["enc_p.encoder.ffn_layers.0.conv_1.weight"] == (768, 192, 3)
    assert state["enc_p.encoder.norm_layers_2.5.gamma"] == (192,)
    assert state["enc_p.proj.weight"] == (384, 192, 1)
    assert state["sdp.flows.7.proj.weight"] == (29, 192, 1)  # 10 widths, 10 heights, 9 inner slopes
    assert state["sdp.post_flows.0.logs"] == (2, 1) and state["sdp.convs.convs_sep.2.weight"] == (192, 1, 3)
    assert state["dp.conv_1.weight"] == (256, 192, 3) and state["dp.cond.weight"] == (192, 256, 1)
    assert state["emb_g.weight"] == (10, 256)
    assert state["flow.flows.6.enc.cond_layer.weight"] == (2 * 192 * 4, 256, 1)
    assert state["dec.ups.0.weight"] == (512, 256, 16)
    assert not any(key.startswith(("enc_q.", "ref_enc.")) for key in state)
    assert len(OV1_SYMBOLS) == 68 and OV1_SYMBOLS[0] == "_" and OV1_SYMBOLS[-1] == " "


def test_relative_attention_matches_its_definition():
    """score(i, j) = q_i·k_j + q_i·K[j-i] and out_i = Σ_j p_ij (v_j + V[j-i]) for |j-i| ≤ 4."""
    torch.manual_seed(0)
    attention = RelativeSelfAttention(8, 2)
    with torch.no_grad():
        attention.emb_rel_k.normal_()
        attention.emb_rel_v.normal_()
    x, time = torch.randn(1, 8, 11), 11
    got = attention(x, torch.ones(1, 1, time, time))
    q = attention.conv_q(x).view(2, 4, time) / 2.0
    k, v = attention.conv_k(x).view(2, 4, time), attention.conv_v(x).view(2, 4, time)
    heads = torch.zeros(2, 4, time)
    for h in range(2):
        for i in range(time):
            scores = torch.stack([q[h, :, i] @ k[h, :, j] + (q[h, :, i] @ attention.emb_rel_k[0, j - i + 4]
                                                              if abs(j - i) <= 4 else 0) for j in range(time)])
            weights = torch.softmax(scores, 0)
            heads[h, :, i] = sum(weights[j] * (v[h, :, j] + (attention.emb_rel_v[0, j - i + 4] if abs(j - i) <= 4
                                                              else 0)) for j in range(time))
    expected = attention.conv_o(heads.reshape(1, 8, time))
    assert torch.allclose(got, expected, atol=1e-5)


def test_the_spline_is_monotonic_invertible_and_the_identity_outside_its_bounds():
    torch.manual_seed(1)
    x = torch.linspace(-7, 7, 401)[None, :]
    widths, heights, slopes = torch.randn(1, 401, 10), torch.randn(1, 401, 10), torch.randn(1, 401, 9)
    # one set of knots for every point, so the output can be checked for monotonicity
    widths, heights, slopes = widths[:, :1].expand_as(widths), heights[:, :1].expand_as(heights), \
        slopes[:, :1].expand_as(slopes)
    y = rational_quadratic_spline(x, widths, heights, slopes, inverse=False)
    assert bool((y[0, 1:] > y[0, :-1]).all())
    outside = x.abs() > SPLINE_BOUND
    assert torch.equal(y[outside], x[outside])
    back = rational_quadratic_spline(y, widths, heights, slopes, inverse=True)
    assert torch.allclose(back, x, atol=1e-4)


def test_english_becomes_the_cleaners_ipa_with_blanks_between_symbols():
    assert english_ipa("Hello world") == "hɛˈloʊ wəɹɫd."
    assert english_ipa("Dr. Smith, 2 cats!") == "ˈdɔktəɹ smɪθ, tu kæts!"
    table = {symbol: index for index, symbol in enumerate(OV1_SYMBOLS)}
    ids = symbol_ids("hɛ.", table, add_blank=True)
    assert ids.tolist() == [0, OV1_SYMBOLS.index("h"), 0, OV1_SYMBOLS.index("ɛ"), 0, OV1_SYMBOLS.index("."), 0]
    assert symbol_ids("h☃", table, add_blank=False).tolist() == [OV1_SYMBOLS.index("h")]


@pytest.fixture(scope="module")
def synthesizer(tmp_path_factory):
    folder = build_openvoice_v1(tmp_path_factory.mktemp("openvoice"))
    return load_model(ModelConfig(name="ov1-synthesizer", model=str(folder), model_type="OpenVoiceV1Synthesizer"))


def test_speaks_in_each_style_at_22_khz(synthesizer):
    assert synthesizer.voices() == list(OV1_STYLES) and synthesizer.language_voices() == {"EN": list(OV1_STYLES)}
    text = "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background."
    first = synthesizer.infer({"text": text, "voice": "cheerful", "seed": 7})
    assert first.sample_rate == 22_050 and first.samples.dtype == np.float32
    # one or more frames of 256 samples per symbol and blank, two sentences, one pause between
    assert first.samples.size >= 256 * 2 * len(english_ipa(text))
    again = synthesizer.infer({"text": text, "voice": "cheerful", "seed": 7})
    assert np.array_equal(first.samples, again.samples)  # the seed fixes both noises
    whispered = synthesizer.infer({"text": text, "voice": "whispering", "seed": 7})
    assert not np.array_equal(first.samples[:4096], whispered.samples[:4096])  # the style steers every step
    faster = synthesizer.infer({"text": text, "voice": "cheerful", "seed": 7, "speed": 2.0})
    assert faster.samples.size < first.samples.size


def test_an_unknown_style_or_language_is_refused(synthesizer, tmp_path):
    with pytest.raises(InputError) as unknown:
        synthesizer.prepare({"text": "Hi there.", "voice": "sarcastic"})
    assert unknown.value.code == "unknown_voice"
    with pytest.raises(InputError):
        synthesizer.prepare({"text": "Hi there.", "language": "zh"})
    with pytest.raises(WeightsNotFound, match="front end"):
        load_model(ModelConfig(name="zh", model=str(tmp_path), model_type="OpenVoiceV1Synthesizer", language="ZH"))


def test_the_checkpoint_loads_strictly_apart_from_the_posterior_encoder(tmp_path):
    folder = build_openvoice_v1(tmp_path)
    checkpoint = folder / "checkpoints/base_speakers/EN/checkpoint.pth"
    state = torch.load(checkpoint)
    assert any(key.startswith("enc_q.") for key in state["model"])
    state["model"].pop("dp.proj.bias")
    torch.save(state, checkpoint)
    with pytest.raises(RuntimeError, match="dp.proj.bias"):
        load_model(ModelConfig(name="broken", model=str(folder), model_type="OpenVoiceV1Synthesizer"))
