"""HarmonySpeech V1's synthesizer: the published layout at full size, the character front
end, and the real loading and generation code on a small random checkpoint in HSE's layout."""

import numpy as np
import pytest

from speechmodels import InputError, ModelConfig, load_model
from speechmodels.families.harmonyspeech_synthesizer import SynthesizedMel
from speechmodels.families.harmonyspeech_synthesizer.network import (
    ForwardTacotron,
    SynthesizerConfig,
)
from speechmodels.families.harmonyspeech_synthesizer.text import SYMBOLS, text_to_ids
from tests.checkpoints import HS_EMBEDDING, build_harmonyspeech


def test_the_published_sizes_give_the_published_layout():
    state = {key: tuple(t.shape) for key, t in ForwardTacotron(SynthesizerConfig()).state_dict().items()}
    assert len(state) == 322  # model_state entries, BatchNorm buffers and the step counter included
    assert state["embedding.weight"] == (66, 256)
    assert state["dur_pred.convs.0.conv.weight"] == (256, 64 + 768, 5)
    assert state["pitch_pred.rnn.weight_hh_l0"] == (384, 128)
    assert state["prenet.conv_project1.conv.weight"] == (256, 16 * 256, 3)
    assert state["lstm.weight_ih_l0"] == (2048, 2 * 256 + 768)
    assert state["postnet.conv_project1.conv.weight"] == (256, 8 * 256, 3)
    assert state["post_proj.weight"] == (80, 512) and state["pitch_proj.weight"] == (512, 1, 3)


def test_characters_are_cleaned_and_end_with_eos():
    assert len(SYMBOLS) == 66 and SYMBOLS[:2] == ["_", "~"]
    ids = text_to_ids("Hi.")
    assert ids == [SYMBOLS.index("h"), SYMBOLS.index("i"), SYMBOLS.index("."), 1]


@pytest.fixture(scope="module")
def synthesizer(tmp_path_factory):
    folder = build_harmonyspeech(tmp_path_factory.mktemp("harmony-speech-v1"))
    return load_model(ModelConfig(name="hs-synthesizer", model=str(folder), model_type="HarmonySpeechSynthesizer"))


def test_text_and_an_embedding_give_an_80_bin_mel(synthesizer):
    embedding = np.random.default_rng(0).standard_normal(HS_EMBEDDING).astype("<f4")
    mel = synthesizer.infer({"text": "Hello there, friend.", "embedding": embedding.tobytes()})
    assert mel.mel.shape[0] == 80 and mel.mel.shape[1] >= 2 * len(text_to_ids("Hello there, friend.")) - 2
    assert np.all(np.isfinite(mel.mel))
    assert np.array_equal(SynthesizedMel.from_bytes(mel.to_bytes()).mel, mel.mel)


def test_a_wrong_sized_embedding_or_empty_text_fails_alone(synthesizer):
    with pytest.raises(InputError) as wrong:
        synthesizer.prepare({"text": "Hello.", "embedding": b"\0" * 12})
    assert wrong.value.param == "input_embedding"
    with pytest.raises(InputError):
        synthesizer.prepare({"text": "###", "embedding": b"\0" * 4 * HS_EMBEDDING})
