import pytest

from speechmodels import ModelConfig, capabilities_of
from speechmodels.base import SpeechModel
from speechmodels.registry import MODEL_FAMILIES, UnknownModelType, family_of


def test_every_family_resolves_to_a_speech_model():
    for model_type, family in MODEL_FAMILIES.items():
        cls = family.load_class()
        assert issubclass(cls, SpeechModel), model_type
        assert family.capabilities


def test_capabilities_and_unknown_type():
    assert capabilities_of(ModelConfig(name="v", model="x", model_type="SileroVAD")) == {"vad"}
    with pytest.raises(UnknownModelType, match="known"):
        family_of("NoSuchFamily")
