from speechmodels.families.melotts.model import MeloTTSSynthesizer

__all__ = ["MeloTTSSynthesizer"]
