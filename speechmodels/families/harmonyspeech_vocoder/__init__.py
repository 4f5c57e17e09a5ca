from speechmodels.families.harmonyspeech_vocoder.model import HarmonySpeechVocoder

__all__ = ["HarmonySpeechVocoder"]
