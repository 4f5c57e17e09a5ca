from speechmodels.families.voicefixer.model import (
    RestoredMel,
    VoiceFixerRestorer,
    VoiceFixerVocoder,
)

__all__ = ["RestoredMel", "VoiceFixerRestorer", "VoiceFixerVocoder"]
