from speechmodels.families.silero_vad.model import SileroVAD, VADParams, VoiceActivity

__all__ = ["SileroVAD", "VADParams", "VoiceActivity"]
