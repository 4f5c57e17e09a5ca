from speechmodels.families.silero_vad.model import SileroVAD
from speechmodels.vad import VADParams, VoiceActivity

__all__ = ["SileroVAD", "VADParams", "VoiceActivity"]
