"""Which names a request may use: models, and toolchains only when all their families are here."""

import pytest

from api.catalog import ModelCatalog
from api.errors import APIError
from speechmodels import ModelConfig
from speechmodels.registry import (
    AUDIO_CONVERSION,
    MEL_RESTORATION,
    MEL_VOCODING,
    SPEAKER_EMBEDDING,
    SPEECH_SYNTHESIS,
    VAD,
    VOICE_CONVERSION,
)

RESTORER = ModelConfig(name="vf-a", model="x", model_type="VoiceFixerRestorer")
VOCODER = ModelConfig(name="vf-b", model="x", model_type="VoiceFixerVocoder")
DENOISER = ModelConfig(name="rnnoise", model="package:pyrnnoise", model_type="RNNoiseDenoiser")


def test_a_complete_toolchain_chains_its_steps_in_order():
    chain = ModelCatalog([VOCODER, RESTORER]).chain("voicefixer", AUDIO_CONVERSION)
    assert chain.name == "voicefixer" and chain.head.name == "vf-a" and chain.head_capability == MEL_RESTORATION
    assert chain.steps == [("vf-a", MEL_RESTORATION), ("vf-b", MEL_VOCODING)]


def test_an_incomplete_toolchain_is_a_404_that_names_what_is_missing():
    catalog = ModelCatalog([RESTORER, DENOISER])
    with pytest.raises(APIError) as missing:
        catalog.chain("voicefixer", AUDIO_CONVERSION)
    assert missing.value.status == 404 and "VoiceFixerVocoder" in missing.value.message
    assert catalog.toolchains() == []


def test_a_toolchain_for_another_capability_is_a_400():
    with pytest.raises(APIError) as wrong:
        ModelCatalog([RESTORER, VOCODER]).chain("voicefixer", SPEECH_SYNTHESIS)
    assert wrong.value.status == 400


def test_a_plain_model_is_its_own_single_step():
    chain = ModelCatalog([DENOISER]).chain("rnnoise", AUDIO_CONVERSION)
    assert chain.steps == [("rnnoise", AUDIO_CONVERSION)]


def test_a_toolchain_prefers_the_models_of_one_repo():
    """A V1 synthesizer and vocoder take the encoder from their own repo, not another encoder."""
    other = ModelConfig(name="resemblyzer", model="package:resemblyzer", model_type="HarmonySpeechEncoder")
    parts = [ModelConfig(name=f"hs-{p}", model="harmony-ai/harmony-speech-v1", model_type=f"HarmonySpeech{p.title()}")
             for p in ("encoder", "synthesizer", "vocoder")]
    chain = ModelCatalog([other, *parts]).chain("harmonyspeech", SPEECH_SYNTHESIS)
    assert [model for model, _ in chain.steps] == ["hs-encoder", "hs-synthesizer", "hs-vocoder"]


OPENVOICE_V1 = [ModelConfig(name=f"ov1-{part}", model="myshell-ai/openvoice", model_type=family)
                for part, family in (("encoder", "OpenVoiceV1ToneConverterEncoder"),
                                     ("converter", "OpenVoiceV1ToneConverter"),
                                     ("synthesizer", "OpenVoiceV1Synthesizer"))]
SILERO = ModelConfig(name="silero-vad", model="package:silero_vad", model_type="SileroVAD")


def test_openvoice_v1_clones_in_four_steps_with_any_vad_model():
    chain = ModelCatalog([*OPENVOICE_V1, SILERO]).chain("openvoice_v1", SPEECH_SYNTHESIS)
    assert chain.steps == [
        ("silero-vad", VAD), ("ov1-encoder", SPEAKER_EMBEDDING), ("ov1-synthesizer", SPEECH_SYNTHESIS),
        ("ov1-converter", VOICE_CONVERSION)]
    # the VAD step must hand on its segments, in seconds (and a Whisper model must do VAD)
    assert chain.fields == {"get_timestamps": True, "return_seconds": True, "task": "vad"}


def test_brought_vad_data_or_embedding_skips_the_steps_they_stand_in_for():
    catalog = ModelCatalog([*OPENVOICE_V1, SILERO])
    with_segments = catalog.chain("openvoice_v1", SPEECH_SYNTHESIS, provided=frozenset({"input_vad_data"}))
    assert [model for model, _ in with_segments.steps] == ["ov1-encoder", "ov1-synthesizer", "ov1-converter"]
    assert with_segments.fields == {}
    with_embedding = catalog.chain("openvoice_v1", SPEECH_SYNTHESIS, provided=frozenset({"input_embedding"}))
    assert [model for model, _ in with_embedding.steps] == ["ov1-synthesizer", "ov1-converter"]


def test_one_toolchain_converts_voices_on_its_own_route():
    catalog = ModelCatalog([*OPENVOICE_V1[:2], SILERO])  # no base speaker: conversion only
    chain = catalog.chain("openvoice_v1", VOICE_CONVERSION)
    assert [model for model, _ in chain.steps] == ["silero-vad", "ov1-encoder", "ov1-converter"]
    with pytest.raises(APIError) as missing:
        catalog.chain("openvoice_v1", SPEECH_SYNTHESIS)
    assert missing.value.status == 404 and "OpenVoiceV1Synthesizer" in missing.value.message
    [(toolchain, routes)] = catalog.toolchains()
    assert toolchain.name == "openvoice_v1" and list(routes) == [VOICE_CONVERSION]
    assert catalog.member("openvoice_v1", SPEAKER_EMBEDDING).name == "ov1-encoder"
    # listed for embeddings (its own encoder), not for the VAD any model does for it
    assert [t.name for t, _ in catalog.toolchains(SPEAKER_EMBEDDING)] == ["openvoice_v1"]
    assert catalog.toolchains(VAD) == []


def test_a_vad_step_needs_some_vad_model_unless_the_request_skips_it():
    catalog = ModelCatalog(OPENVOICE_V1)
    with pytest.raises(APIError) as missing:
        catalog.chain("openvoice_v1", SPEECH_SYNTHESIS)
    assert missing.value.status == 404 and "any vad model" in missing.value.message
    embedded = catalog.chain("openvoice_v1", SPEECH_SYNTHESIS, provided=frozenset({"input_embedding"}))
    assert [model for model, _ in embedded.steps] == ["ov1-synthesizer", "ov1-converter"]


def test_a_vad_step_prefers_a_model_that_only_does_vad():
    whisper = ModelConfig(name="whisper", model="x", model_type="FasterWhisper")  # transcribes and does VAD
    chain = ModelCatalog([whisper, *OPENVOICE_V1, SILERO]).chain("openvoice_v1", VOICE_CONVERSION)
    assert chain.steps[0] == ("silero-vad", VAD)
    chain = ModelCatalog([whisper, *OPENVOICE_V1]).chain("openvoice_v1", VOICE_CONVERSION)
    assert chain.steps[0] == ("whisper", VAD) and chain.fields["task"] == "vad"
