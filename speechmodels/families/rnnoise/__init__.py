from speechmodels.families.rnnoise.model import RNNoiseDenoiser

__all__ = ["RNNoiseDenoiser"]
