from speechmodels.families.harmonyspeech_synthesizer.model import (
    HarmonySpeechSynthesizer,
    SynthesizedMel,
)

__all__ = ["HarmonySpeechSynthesizer", "SynthesizedMel"]
