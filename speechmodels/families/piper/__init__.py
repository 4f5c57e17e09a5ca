from speechmodels.families.piper.model import PiperSynthesizer

__all__ = ["PiperSynthesizer"]
