"""Which names a request may use: models, and toolchains only when all their families are here."""

import pytest

from api.catalog import ModelCatalog
from api.errors import APIError
from speechmodels import ModelConfig
from speechmodels.registry import (
    AUDIO_CONVERSION,
    MEL_RESTORATION,
    MEL_VOCODING,
    SPEECH_SYNTHESIS,
)

RESTORER = ModelConfig(name="vf-a", model="x", model_type="VoiceFixerRestorer")
VOCODER = ModelConfig(name="vf-b", model="x", model_type="VoiceFixerVocoder")
DENOISER = ModelConfig(name="rnnoise", model="package:pyrnnoise", model_type="RNNoiseDenoiser")


def test_a_complete_toolchain_plans_its_steps_in_order():
    plan = ModelCatalog([VOCODER, RESTORER]).plan("voicefixer", AUDIO_CONVERSION, "audio conversion")
    assert plan.name == "voicefixer" and plan.head.name == "vf-a" and plan.head_capability == MEL_RESTORATION
    assert plan.steps == [{"model": "vf-a", "capability": MEL_RESTORATION}, {"model": "vf-b", "capability": MEL_VOCODING}]


def test_an_incomplete_toolchain_is_a_404_that_names_what_is_missing():
    catalog = ModelCatalog([RESTORER, DENOISER])
    with pytest.raises(APIError) as missing:
        catalog.plan("voicefixer", AUDIO_CONVERSION, "audio conversion")
    assert missing.value.status == 404 and "VoiceFixerVocoder" in missing.value.message
    assert catalog.toolchains() == []


def test_a_toolchain_for_another_capability_is_a_400():
    with pytest.raises(APIError) as wrong:
        ModelCatalog([RESTORER, VOCODER]).plan("voicefixer", SPEECH_SYNTHESIS, "text to speech")
    assert wrong.value.status == 400


def test_a_plain_model_is_its_own_single_step():
    plan = ModelCatalog([DENOISER]).plan("rnnoise", AUDIO_CONVERSION, "audio conversion")
    assert plan.steps == [{"model": "rnnoise", "capability": AUDIO_CONVERSION}]


def test_a_toolchain_prefers_the_models_of_one_repo():
    """A V1 synthesizer and vocoder take the encoder from their own repo, not another encoder."""
    other = ModelConfig(name="resemblyzer", model="package:resemblyzer", model_type="HarmonySpeechEncoder")
    parts = [ModelConfig(name=f"hs-{p}", model="harmony-ai/harmony-speech-v1", model_type=f"HarmonySpeech{p.title()}")
             for p in ("encoder", "synthesizer", "vocoder")]
    plan = ModelCatalog([other, *parts]).plan("harmonyspeech", SPEECH_SYNTHESIS, "text to speech")
    assert [step["model"] for step in plan.steps] == ["hs-encoder", "hs-synthesizer", "hs-vocoder"]
