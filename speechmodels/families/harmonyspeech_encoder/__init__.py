from speechmodels.families.harmonyspeech_encoder.model import (
    EncoderConfig,
    HarmonySpeechEncoder,
    SpeakerEncoderNet,
)

__all__ = ["EncoderConfig", "HarmonySpeechEncoder", "SpeakerEncoderNet"]
